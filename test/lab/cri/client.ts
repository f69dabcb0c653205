import { join } from 'node:path';
import { type Client, credentials, loadPackageDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

/**
 * A CRI v1 RuntimeService client over containerd's socket, from the lab's own cri.proto. Messages
 * keep the proto's snake_case names; int64 fields are strings; enums are their names; with
 * `defaults`, every field of an answer is present (absent sub-messages are null).
 */

export const CRI_PROTO = join(import.meta.dirname, 'cri.proto');
export const CRI_LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

type Map = Record<string, string>;
export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
export type ContainerState =
  | 'CONTAINER_CREATED'
  | 'CONTAINER_RUNNING'
  | 'CONTAINER_EXITED'
  | 'CONTAINER_UNKNOWN';

export interface NamespaceOption {
  network?: NamespaceMode;
  pid?: NamespaceMode;
  ipc?: NamespaceMode;
  target_id?: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

export interface PortMapping {
  protocol?: Protocol;
  container_port: number;
  host_port: number;
  host_ip?: string;
}

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  dns_config?: { servers?: string[]; searches?: string[]; options?: string[] };
  port_mappings?: PortMapping[];
  labels?: Map;
  annotations?: Map;
  linux?: {
    cgroup_parent?: string;
    security_context?: {
      namespace_options?: NamespaceOption;
      privileged?: boolean;
      readonly_rootfs?: boolean;
    };
    sysctls?: Map;
  };
}

export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata;
  state: PodSandboxState;
  created_at: string;
  labels: Map;
  annotations: Map;
  runtime_handler: string;
}

export interface PodSandboxStatus extends PodSandbox {
  network: { ip: string; additional_ips: { ip: string }[] } | null;
}

export interface ImageSpec {
  image: string;
  annotations?: Map;
}

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

export interface ContainerConfig {
  metadata: ContainerMetadata;
  image: ImageSpec;
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: { key: string; value: string }[];
  labels?: Map;
  annotations?: Map;
  log_path?: string;
  mounts?: Mount[];
  linux?: { resources?: LinuxContainerResources; security_context?: LinuxContainerSecurityContext };
}

export type MountPropagation =
  | 'PROPAGATION_PRIVATE'
  | 'PROPAGATION_HOST_TO_CONTAINER'
  | 'PROPAGATION_BIDIRECTIONAL';

export interface Mount {
  container_path: string;
  /** As the runtime sees it. */
  host_path: string;
  readonly?: boolean;
  propagation?: MountPropagation;
}

/** int64 fields as strings (proto-loader's longs: String). */
export interface LinuxContainerResources {
  cpu_period?: string;
  cpu_quota?: string;
  cpu_shares?: string;
  memory_limit_in_bytes?: string;
  oom_score_adj?: string;
}

export interface LinuxContainerSecurityContext {
  /** Names without CAP_ (NET_ADMIN), as the kubelet sends them; the runtime adds the prefix. */
  capabilities?: { add_capabilities?: string[]; drop_capabilities?: string[] };
  privileged?: boolean;
  namespace_options?: NamespaceOption;
  readonly_rootfs?: boolean;
}

export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata: ContainerMetadata;
  image: ImageSpec;
  image_ref: string;
  state: ContainerState;
  created_at: string;
  labels: Map;
  annotations: Map;
}

export interface ContainerStatus {
  id: string;
  metadata: ContainerMetadata;
  state: ContainerState;
  created_at: string;
  started_at: string;
  finished_at: string;
  exit_code: number;
  image: ImageSpec;
  image_ref: string;
  reason: string;
  message: string;
  labels: Map;
  annotations: Map;
  log_path: string;
}

/** Request and answer of each RuntimeService method the lab uses. */
export interface CriMethods {
  Version: [
    { version: string },
    { version: string; runtime_name: string; runtime_version: string; runtime_api_version: string },
  ];
  /** The runtime's conditions: RuntimeReady, and NetworkReady (false while no CNI config loads). */
  Status: [
    { verbose?: boolean },
    { status: { conditions: { type: string; status: boolean; reason: string; message: string }[] } },
  ];
  RunPodSandbox: [{ config: PodSandboxConfig; runtime_handler?: string }, { pod_sandbox_id: string }];
  StopPodSandbox: [{ pod_sandbox_id: string }, object];
  RemovePodSandbox: [{ pod_sandbox_id: string }, object];
  PodSandboxStatus: [{ pod_sandbox_id: string; verbose?: boolean }, { status: PodSandboxStatus; info: Map }];
  ListPodSandbox: [
    { filter?: { id?: string; state?: { state: PodSandboxState }; label_selector?: Map } },
    { items: PodSandbox[] },
  ];
  CreateContainer: [
    { pod_sandbox_id: string; config: ContainerConfig; sandbox_config: PodSandboxConfig },
    { container_id: string },
  ];
  StartContainer: [{ container_id: string }, object];
  StopContainer: [{ container_id: string; timeout?: number }, object];
  RemoveContainer: [{ container_id: string }, object];
  ListContainers: [
    {
      filter?: {
        id?: string;
        state?: { state: ContainerState };
        pod_sandbox_id?: string;
        label_selector?: Map;
      };
    },
    { containers: Container[] },
  ];
  ContainerStatus: [{ container_id: string; verbose?: boolean }, { status: ContainerStatus; info: Map }];
  ReopenContainerLog: [{ container_id: string }, object];
}

export type CriMethod = keyof CriMethods;

export interface CriClient {
  /** One unary call; rejects with the gRPC error, its message prefixed by the method. */
  call<M extends CriMethod>(
    method: M,
    request: CriMethods[M][0],
    timeoutMs?: number,
  ): Promise<CriMethods[M][1]>;
  close(): void;
}

/** A gRPC error from the runtime (code, details), as call() rejects with it. */
export type CriError = ServiceError;

type Unary = (
  req: unknown,
  options: { deadline: Date },
  cb: (err: ServiceError | null, res: unknown) => void,
) => void;

let loaded:
  | (new (
      address: string,
      creds: ReturnType<typeof credentials.createInsecure>,
    ) => Client)
  | undefined;

function runtimeServiceClass() {
  if (!loaded) {
    const pkg = loadPackageDefinition(loadSync(CRI_PROTO, CRI_LOADER_OPTIONS)) as unknown as {
      runtime: { v1: { RuntimeService: NonNullable<typeof loaded> } };
    };
    loaded = pkg.runtime.v1.RuntimeService;
  }
  return loaded;
}

/** A client of the RuntimeService at a unix socket path. */
export function criClient(socketPath: string, defaultTimeoutMs = 60_000): CriClient {
  const Service = runtimeServiceClass();
  const client = new Service(`unix://${socketPath}`, credentials.createInsecure());
  const methods = client as unknown as Record<CriMethod, Unary>;
  return {
    call: (method, request, timeoutMs = defaultTimeoutMs) =>
      new Promise((resolve, reject) => {
        methods[method].call(client, request, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
          if (err) {
            err.message = `CRI ${method}: ${err.message}`;
            reject(err);
          } else resolve(res as never);
        });
      }),
    close: () => client.close(),
  };
}
