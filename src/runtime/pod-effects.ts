/**
 * The side effects of the pod machine, done against a ContainerRuntime. Each
 * one is idempotent: a restored pod actor re-runs the effect of the state it
 * was saved in, so creating looks for the container it may already have made.
 */
import { fromCallback, fromPromise } from 'xstate';
import {
  podMachine,
  type ContainerCheck,
  type PodContext,
  type PodEvent,
  type StartedContainer,
} from '../actors/pod';
import { startProbing, type ProberInput, type ProbeResult } from '../actors/prober';
import type { Probe } from '../manifest/types';
import { RuntimeError } from '../errors';
import type { ContainerCreateSpec, ContainerRuntime } from './container-runtime';
import { parseCpuMillis, parseMemoryBytes } from '../manifest/quantity';
import { buildContainerLabels, hashContainerSpec } from './labels';
import { executeProbe, type ExecInContainer, type ProbeTarget } from './probes';

/** What the effects need besides the runtime. */
export interface PodEffectsOptions {
  runtime: ContainerRuntime;
  clusterId: string;
  nodeName: string;
  /** Extra labels on every container (tests mark their runs this way). */
  extraLabels?: Record<string, string>;
  /** Environment for every container (Service variables, for example). */
  environmentFor?: (ctx: PodContext) => string[];
  /** Resolves once no balancer sends new traffic to the pod and in-flight work ended. */
  drain: (ctx: PodContext) => Promise<void>;
  /** Runs exec probes inside containers; without it exec probes fail. */
  exec?: ExecInContainer;
  /** Executes one probe; executeProbe unless a test replaces it. */
  runProbe?: (target: ProbeTarget, probe: Probe, timeoutMs: number) => Promise<ProbeResult>;
  /** Milliseconds per probe second (1000); tests shorten it. */
  probeSecondMs?: number;
}

/** The Docker container name of attempt `restartCount` of a pod. */
export function containerName(ctx: PodContext): string {
  return `flotilla_${ctx.pod.name}_${ctx.pod.uid.slice(0, 8)}_${ctx.restartCount}`;
}

/** The pod machine wired to a real runtime. */
export function providePodEffects(opts: PodEffectsOptions) {
  const { runtime } = opts;
  type In = { context: PodContext };
  return podMachine.provide({
    actors: {
      ensureImage: fromPromise<{ imageId?: string }, In>(async ({ input }) => {
        await ensureImage(
          runtime,
          input.context.container.image,
          input.context.container.imagePullPolicy,
        );
        return {};
      }),
      createContainer: fromPromise<StartedContainer, In>(({ input }) =>
        createContainer(opts, input.context),
      ),
      startContainer: fromPromise<StartedContainer, In>(({ input }) =>
        startContainer(runtime, input.context),
      ),
      checkContainer: fromPromise<ContainerCheck, In>(({ input }) =>
        checkContainer(runtime, input.context),
      ),
      removeContainer: fromPromise<void, In>(async ({ input }) => {
        if (input.context.containerId) await runtime.removeContainer(input.context.containerId);
      }),
      drain: fromPromise<void, In>(({ input }) => opts.drain(input.context)),
      prober: fromCallback<PodEvent, ProberInput>(({ sendBack, input }) =>
        probe(opts, input, sendBack),
      ),
      stopContainer: fromPromise<void, In>(async ({ input }) => {
        const ctx = input.context;
        if (ctx.containerId) {
          await runtime.stopContainer(ctx.containerId, ctx.pod.terminationGracePeriodSeconds);
        }
      }),
    },
  });
}

function probe(opts: PodEffectsOptions, input: ProberInput, send: (e: PodEvent) => void) {
  const target: ProbeTarget = {
    ip: input.ip,
    containerId: input.containerId,
    container: input.container,
    exec: opts.exec,
  };
  const run = opts.runProbe ?? executeProbe;
  return startProbing({
    input,
    send,
    run: (p, timeoutMs) => run(target, p, timeoutMs),
    secondMs: opts.probeSecondMs,
  });
}

async function ensureImage(runtime: ContainerRuntime, image: string, policy: string) {
  if (policy === 'Always') return runtime.pullImage(image);
  if (await runtime.hasImage(image)) return;
  if (policy === 'Never') {
    throw new RuntimeError(
      'ErrImageNeverPull',
      `image "${image}" is not present and imagePullPolicy is Never`,
    );
  }
  await runtime.pullImage(image);
}

async function createContainer(
  opts: PodEffectsOptions,
  ctx: PodContext,
): Promise<StartedContainer> {
  const name = containerName(ctx);
  const existing = await opts.runtime.inspectContainer(name);
  if (existing) return { containerId: existing.id, imageId: existing.imageId };

  const c = ctx.container;
  const spec: ContainerCreateSpec = {
    name,
    image: c.image,
    labels: {
      ...(opts.extraLabels ?? {}),
      ...buildContainerLabels({
        clusterId: opts.clusterId,
        nodeName: opts.nodeName,
        podName: ctx.pod.name,
        podUid: ctx.pod.uid,
        namespace: 'default',
        deployment: ctx.pod.deployment,
        containerName: c.name,
        specHash: hashContainerSpec(c),
      }),
    },
    env: [
      ...(opts.environmentFor?.(ctx) ?? []),
      ...(c.env ?? []).map((e) => `${e.name}=${e.value}`),
    ],
    command: c.command,
    args: c.args,
    workingDir: c.workingDir,
    hostname: ctx.pod.name.slice(0, 63),
    memoryBytes: parseMemory(c.resources?.limits?.memory),
    nanoCpus: parseCpu(c.resources?.limits?.cpu),
  };
  const id = await opts.runtime.createContainer(spec);
  return { containerId: id };
}

async function startContainer(
  runtime: ContainerRuntime,
  ctx: PodContext,
): Promise<StartedContainer> {
  const id = ctx.containerId as string;
  await runtime.startContainer(id);
  const info = await runtime.inspectContainer(id);
  if (!info) throw new RuntimeError('RunContainerError', `container ${id} vanished after start`);
  return { containerId: id, imageId: info.imageId, ip: info.ipAddress, startedAt: info.startedAt };
}

async function checkContainer(runtime: ContainerRuntime, ctx: PodContext): Promise<ContainerCheck> {
  if (!ctx.containerId) return { running: false };
  const info = await runtime.inspectContainer(ctx.containerId);
  if (!info) return { running: false, exitCode: 137 };
  return {
    running: info.state === 'running' || info.state === 'restarting' || info.state === 'paused',
    exitCode: info.exitCode,
    finishedAt: info.finishedAt,
    ip: info.ipAddress,
  };
}

/**
 * Bytes of a Kubernetes memory quantity ("128Mi", "1G", "24683792Ki"),
 * undefined when absent or unreadable. Shares the manifest module's parser,
 * so that what apply accepts is what the scheduler and Docker read.
 */
export function parseMemory(quantity: string | undefined): number | undefined {
  return quantity ? parseMemoryBytes(quantity) : undefined;
}

/** Billionths of a CPU of a Kubernetes CPU quantity ("500m", "2"). */
export function parseCpu(quantity: string | undefined): number | undefined {
  if (!quantity) return undefined;
  const milli = parseCpuMillis(quantity);
  return milli === undefined ? undefined : milli * 1e6;
}
