/**
 * Executes one probe against a container from the node that runs it, as the
 * kubelet does: httpGet and tcpSocket connect to the pod's IP, exec runs a
 * command inside the container through the engine.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { ProbeResult } from '../actors/prober';
import type { Container, HTTPGetAction, Probe } from '../manifest/types';

/** Runs a command in a container; resolves with its exit code and output. */
export type ExecInContainer = (
  containerId: string,
  command: string[],
  timeoutMs: number,
) => Promise<{ exitCode: number; output: string }>;

/** Where a probe is sent. */
export interface ProbeTarget {
  /** The pod's IP address; undefined until the engine reported it. */
  ip?: string;
  containerId?: string;
  container: Container;
  exec?: ExecInContainer;
}

/** Executes `probe` once against `target`. */
export async function executeProbe(
  target: ProbeTarget,
  probe: Probe,
  timeoutMs: number,
): Promise<ProbeResult> {
  if (probe.exec) return execProbe(target, probe.exec.command, timeoutMs);
  if (!target.ip) return { ok: false, message: 'the pod has no IP address yet' };
  if (probe.httpGet) return httpProbe(target.ip, target.container, probe.httpGet, timeoutMs);
  if (probe.tcpSocket) {
    const port = resolvePort(target.container, probe.tcpSocket.port);
    return tcpProbe(target.ip, port, timeoutMs);
  }
  return { ok: false, message: 'the probe has no handler' };
}

/** A port number, or the number of the container port with that name. */
export function resolvePort(container: Container, port: number | string): number {
  if (typeof port === 'number') return port;
  const found = container.ports?.find((p) => p.name === port);
  return found?.containerPort ?? Number.NaN;
}

/** GET; any status from 200 to 399 passes, as in Kubernetes. */
export function httpProbe(
  host: string,
  container: Container,
  action: HTTPGetAction,
  timeoutMs: number,
): Promise<ProbeResult> {
  const port = resolvePort(container, action.port);
  const secure = action.scheme === 'HTTPS';
  const headers: Record<string, string> = { 'user-agent': 'flotilla-probe/1.0' };
  for (const h of action.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  const request = secure ? https.request : http.request;
  const url = `${secure ? 'https' : 'http'}://${hostPart(host)}:${port}${action.path}`;
  return new Promise((resolve) => {
    const req = request(url, { headers, timeout: timeoutMs, rejectUnauthorized: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      const ok = status >= 200 && status < 400;
      resolve(ok ? { ok } : { ok, message: `HTTP probe failed with statuscode: ${status}` });
    });
    req.on('timeout', () => req.destroy(new Error(`Get "${url}": timeout after ${timeoutMs}ms`)));
    req.on('error', (err) => resolve({ ok: false, message: `Get "${url}": ${err.message}` }));
    req.end();
  });
}

/** Opens and closes a TCP connection. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const fail = (why: string) => {
      socket.destroy();
      resolve({ ok: false, message: `dial tcp ${hostPart(host)}:${port}: ${why}` });
    };
    socket.setTimeout(timeoutMs, () => fail(`i/o timeout after ${timeoutMs}ms`));
    socket.once('error', (err) => fail(err.message));
    socket.once('connect', () => {
      socket.destroy();
      resolve({ ok: true });
    });
  });
}

async function execProbe(target: ProbeTarget, command: string[], timeoutMs: number) {
  if (!target.exec) return { ok: false, message: 'exec probes are not supported by this runtime' };
  if (!target.containerId) return { ok: false, message: 'the container is not running' };
  const { exitCode, output } = await target.exec(target.containerId, command, timeoutMs);
  if (exitCode === 0) return { ok: true };
  const tail = output.trim().slice(-200);
  return { ok: false, message: `command exited with ${exitCode}${tail ? `: ${tail}` : ''}` };
}

function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
