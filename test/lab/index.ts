export {
  ALERTMANAGER_LAB_USER,
  type Alertmanager,
  type AlertmanagerOptions,
  type AmAlert,
  type AmNotification,
  startAlertmanager,
} from './alertmanager.ts';
export { skipReason, which } from './bin.ts';
export { cgroupDirsOfPid } from './cgroup.ts';
export {
  CONTAINERD_BINARIES,
  type Containerd,
  type ContainerdOptions,
  networkCondition,
  runtimeSpecOf,
  startContainerd,
} from './containerd.ts';
export {
  CgroupTracker,
  cgroupDirs,
  existingCgroupDirs,
  removeCgroup,
  removeCgroupSoon,
} from './cri/cgroups.ts';
export {
  type CriClient,
  type CriMethod,
  type CriMethods,
  criClient,
} from './cri/client.ts';
export {
  type CniCall,
  type LabCniNetwork,
  type LabCniOptions,
  REFERENCE_PLUGINS,
  startLabCniNetwork,
} from './cri/cni.ts';
export {
  busyboxRootfs,
  imageArchive,
  type LabImage,
  LOG_WRITER,
  PAUSE_IMAGE,
  WORKLOAD_IMAGE,
} from './cri/images.ts';
export { type Dockerd, type DockerdOptions, importBusybox, startDockerd } from './docker.ts';
export { type Etcd, type EtcdMember, type EtcdOptions, type EtcdStatus, startEtcd } from './etcd.ts';
export { type RunOptions, type RunResult, run, runOk } from './exec.ts';
export { type KafkaMock, type KafkaOptions, type KafkaRecord, startKafka } from './kafka.ts';
export {
  containerLogSymlink,
  type KubeletLite,
  type KubeletLiteOptions,
  type LiteContainer,
  type LiteContainerSpec,
  type LitePod,
  type LitePodSpec,
  type LogRotationPolicy,
  podCgroupParent,
  type RotatedLog,
  RunPodError,
  rotationTimestamp,
  startKubeletLite,
} from './kubelet-lite.ts';
export { type LastResortPhase, onLastResort } from './lastresort.ts';
export { mountsUnder, unmountUnder } from './mounts.ts';
export {
  type HostName,
  kernelHasBridgeVlanFiltering,
  kernelHasVlan,
  kernelHasVxlan,
  listNetns,
  type NetHost,
  type NetLab,
  type NetLabOptions,
  type Probe,
  startNetLab,
} from './netlab.ts';
export { freePort, freePorts } from './ports.ts';
export { Service, type ServiceExit, type ServiceSpec, startService } from './proc.ts';
export { type Prometheus, type PrometheusOptions, type PromSample, startPrometheus } from './prometheus.ts';
export { Lab } from './scope.ts';
export { removeTree, tempDir } from './tmp.ts';
export { type WaitOptions, waitFor } from './wait.ts';
