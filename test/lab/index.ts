export { skipReason, which } from './bin.ts';
export { cgroupDirsOfPid } from './cgroup.ts';
export { type Dockerd, type DockerdOptions, importBusybox, startDockerd } from './docker.ts';
export { type Etcd, type EtcdMember, type EtcdOptions, type EtcdStatus, startEtcd } from './etcd.ts';
export { type RunOptions, type RunResult, run, runOk } from './exec.ts';
export { type KafkaMock, type KafkaOptions, type KafkaRecord, startKafka } from './kafka.ts';
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
