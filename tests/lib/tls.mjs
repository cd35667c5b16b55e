// A throwaway PKI for TLS tests, made with openssl: a CA, server certificates for 127.0.0.1/localhost signed by
// it, and a second, unrelated CA (for "wrong CA" cases). Files live in a temp folder the test removes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import tls from 'node:tls';

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

function makeCa(dir, name) {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-keyout', `${name}.key`, '-out', `${name}.pem`], dir);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

/** A new server certificate for 127.0.0.1 and localhost, signed by `ca`; returns its files. */
export function issueServerCert(pki, name) {
  const dir = pki.dir;
  const ext = path.join(dir, `${name}.ext`);
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', pki.ca.cert, '-CAkey', pki.ca.key, '-CAcreateserial',
    '-days', '2', '-extfile', ext, '-out', `${name}.pem`], dir);
  return { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
}

export function makePki() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-tls-'));
  const pki = { dir };
  pki.ca = makeCa(dir, 'test-ca');
  pki.otherCa = makeCa(dir, 'other-ca');
  pki.server = issueServerCert(pki, 'server');
  pki.remove = () => fs.rmSync(dir, { recursive: true, force: true });
  return pki;
}

/** SHA-256 fingerprint of the certificate a TLS server on `port` presents (trusting `caFile`). */
export function servedFingerprint(port, caFile) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(caFile), servername: 'localhost' }, () => {
      const cert = socket.getPeerCertificate();
      socket.end();
      resolve(cert.fingerprint256);
    });
    socket.on('error', reject);
  });
}

/** The fingerprint of a PEM certificate file, in the form `servedFingerprint` gives. */
export function fileFingerprint(certFile) {
  return new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}
