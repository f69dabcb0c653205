import { execFileSync } from 'node:child_process';

/** A self-signed certificate for 127.0.0.1 (it is its own CA file) and its key, for test servers. */
export function selfSignedCertificate(certFile: string, keyFile: string): void {
  // biome-ignore format: one flag and its value per line
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', keyFile, '-out', certFile,
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
}
