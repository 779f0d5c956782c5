import { Command, Option } from 'commander';
import type { ApiClient } from '../api/client';
import type { GlobalOptions, Output } from './context';

// Only commander is loaded up front. Each action imports its own module, so
// `flotilla version --client` and `--help` stay as fast as node itself.

type ClientAction = (client: ApiClient, output: Output) => Promise<void>;

async function withClient(cmd: Command, action: ClientAction): Promise<void> {
  const ctx = await import('./context');
  await action(ctx.createClient(globalsOf(cmd)), ctx.processOutput);
}

function globalsOf(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** The data directory when neither --data-dir nor FLOTILLA_DATA_DIR is given. */
export const DEFAULT_DATA_DIR = '/var/lib/flotilla';

const KINDS_HELP = 'KIND is nodes (no), pods (po), deployments (deploy) or services (svc)';

/** Builds the `flotilla` command line with every subcommand. */
export function buildProgram(): Command {
  const program = new Command('flotilla')
    .description('A container orchestrator for small fleets')
    .addOption(
      new Option('--data-dir <dir>', "the agent's data directory; its socket is DIR/flotilla.sock")
        .env('FLOTILLA_DATA_DIR')
        .default(DEFAULT_DATA_DIR),
    )
    .option('--debug', 'print stack traces of unexpected errors (also FLOTILLA_DEBUG=1)')
    .showHelpAfterError('(add --help for usage)')
    .configureHelp({ sortSubcommands: false });

  addAgent(program);
  addApply(program);
  addGet(program);
  addDescribe(program);
  addDelete(program);
  addRun(program);
  addScale(program);
  addSet(program);
  addEdit(program);
  addRollout(program);
  addToken(program);
  addBackup(program);
  addVersion(program);
  addKubeconfig(program);
  addNodeCommands(program);
  addInstall(program);
  return program;
}

function addAgent(program: Command): void {
  program
    .command('agent')
    .description('run this server as a member of the cluster')
    .option('--name <name>', "this node's name (default: the host name)")
    .option('--listen <host:port>', 'address for cluster traffic')
    .option('--join <host:port>', 'address of a member of the cluster to join')
    .addOption(
      new Option('--token <token>', 'the shared secret of the cluster').env('FLOTILLA_TOKEN'),
    )
    .option('--voters <n>', 'founder only: voters the cluster grows to, up to 5 (default 3)')
    .option('--node-grace <seconds>', "a dead node's pods move after this (default 5)")
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--container-label <k=v>', 'label for every container (repeatable)', collect)
    .action(async (flags, cmd: Command) => {
      const { runAgentCommand } = await import('./agent');
      await runAgentCommand(globalsOf(cmd).dataDir, flags);
    });
}

function addApply(program: Command): void {
  program
    .command('apply')
    .description('create or update objects from manifest files')
    .requiredOption('-f, --filename <path>', 'file, directory or - for stdin (repeatable)', collect)
    .option('-R, --recursive', 'also read manifests in subdirectories')
    .option('--wait', "wait until every applied deployment's rollout completes")
    .option('--timeout <duration>', 'with --wait: give up after this long (90s, 5m)')
    .action((opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runApply } = await import('./apply');
        await runApply(client, opts, output);
      }),
    );
}

function addRollout(program: Command): void {
  const rollout = program.command('rollout').description("manage a deployment's rollouts");
  const actions: [string, string][] = [
    ['status', 'wait for the rollout to finish; non-zero exit when it failed'],
    ['history', 'list the revisions'],
    ['undo', 'roll back to the previous revision, or to --to-revision'],
    ['pause', 'stop rolling out changes of the template'],
    ['resume', 'continue a paused rollout'],
    ['restart', 'replace every pod, keeping the template otherwise'],
  ];
  for (const [action, description] of actions) {
    const sub = rollout
      .command(action)
      .description(description)
      .argument('<objects...>', 'deployment/NAME or deployment NAME');
    if (action === 'status')
      sub.option('--timeout <duration>', 'give up after this long (90s, 5m)');
    if (action === 'history') sub.option('--revision <n>', 'show the pod template of one revision');
    if (action === 'undo') sub.option('--to-revision <n>', 'the revision to go back to');
    sub.action((words: string[], opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runRollout } = await import('./rollout');
        await runRollout(client, action, words, opts, output);
      }),
    );
  }
}

function addGet(program: Command): void {
  program
    .command('get')
    .description(`list objects or show some; ${KINDS_HELP}`)
    .argument('<kind>', 'KIND, KIND,KIND or KIND/NAME')
    .argument('[names...]', 'names of objects to show')
    .option('-o, --output <format>', 'wide, json, yaml or name')
    .option('-l, --selector <selector>', 'only objects with these labels: k=v,k2!=v2')
    .action((kind: string, names: string[], opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runGet } = await import('./get');
        await runGet(client, [kind, ...names], opts, output);
      }),
    );
}

function addDescribe(program: Command): void {
  program
    .command('describe')
    .description(`show an object in detail; ${KINDS_HELP}`)
    .argument('<kind>', 'KIND or KIND/NAME')
    .argument('[name]', 'name of the object')
    .action((kind: string, name: string | undefined, _opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runDescribe } = await import('./describe');
        await runDescribe(client, name === undefined ? [kind] : [kind, name], output);
      }),
    );
}

function addDelete(program: Command): void {
  program
    .command('delete')
    .description('delete deployments or services, by name or by manifest')
    .argument('[objects...]', 'KIND NAME..., or KIND/NAME...')
    .option('-f, --filename <path>', 'delete the objects these manifests name', collect)
    .option('-R, --recursive', 'also read manifests in subdirectories')
    .option('--ignore-not-found', 'succeed when an object does not exist')
    .action((words: string[], opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runDelete } = await import('./delete');
        await runDelete(client, words, opts, output);
      }),
    );
}

function addRun(program: Command): void {
  program
    .command('run')
    .description('create a deployment of one container')
    .argument('<name>', 'name of the deployment and its container')
    .requiredOption('--image <image>', 'container image')
    .option('--port <port>', 'port the container listens on')
    .option('--replicas <n>', 'number of replicas', '1')
    .option('--labels <k=v,...>', 'labels besides app=NAME')
    .action((name: string, opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runRun } = await import('./run');
        await runRun(client, name, opts, output);
      }),
    );
}

function addScale(program: Command): void {
  program
    .command('scale')
    .description('set the number of replicas of a deployment')
    .argument('<objects...>', 'deployment NAME or deployment/NAME')
    .requiredOption('--replicas <n>', 'the new number of replicas')
    .action((words: string[], opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runScale } = await import('./scale');
        await runScale(client, words, opts, output);
      }),
    );
}

function addSet(program: Command): void {
  const set = program.command('set').description('change one field of an object');
  set
    .command('image')
    .description("change containers' images, which starts a rollout")
    .argument('<args...>', 'deployment/NAME CONTAINER=IMAGE... (* for every container)')
    .action((words: string[], _opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runSetImage } = await import('./set-image');
        await runSetImage(client, words, output);
      }),
    );
}

function addEdit(program: Command): void {
  program
    .command('edit')
    .description('edit a deployment or service in $EDITOR and save it')
    .argument('<objects...>', 'KIND NAME or KIND/NAME')
    .action((words: string[], _opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runEdit } = await import('./edit');
        await runEdit(client, words, output);
      }),
    );
}

function addNodeCommands(program: Command): void {
  const simple = [
    ['cordon', 'mark a node unschedulable: new pods avoid it', 'runCordon'],
    ['uncordon', 'mark a node schedulable again', 'runUncordon'],
  ] as const;
  for (const [verb, description, fn] of simple) {
    program
      .command(verb)
      .description(description)
      .argument('<node>', 'the node name')
      .action((name: string, _opts, cmd: Command) =>
        withClient(cmd, async (client, output) => {
          const commands = await import('./node-commands');
          await commands[fn](client, name, output);
        }),
      );
  }
  program
    .command('drain')
    .description('cordon a node and move its pods elsewhere; waits until it has none')
    .argument('<node>', 'the node name')
    .option('--timeout <duration>', 'give up after this long (default 5m; 0 waits forever)')
    .action((name: string, opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runDrain } = await import('./node-commands');
        await runDrain(client, name, opts, output);
      }),
    );
  const node = program.command('node').description('manage cluster members');
  node
    .command('remove')
    .description('remove a node from the cluster; its pods are recreated elsewhere')
    .argument('<node>', 'the node name (not the server you are talking to)')
    .action((name: string, _opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runNodeRemove } = await import('./node-commands');
        await runNodeRemove(client, name, output);
      }),
    );
}

function addToken(program: Command): void {
  const token = program.command('token').description("the cluster's join token");
  token
    .command('create')
    .description('print the token that `flotilla agent --join ... --token TOKEN` needs')
    .action((_opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const answer = await client.request<{ token: string }>(
          'POST',
          '/apis/flotilla.io/v1/tokens',
        );
        output.out(`${answer.token}\n`);
      }),
    );
}

function addBackup(program: Command): void {
  program
    .command('backup')
    .description("save a consistent copy of the running agent's state to FILE")
    .argument('<file>', 'where to write the backup')
    .action(async (file: string, _opts, cmd: Command) => {
      const { runBackup } = await import('./backup');
      await runBackup(globalsOf(cmd).dataDir, file, processOutput());
    });
  program
    .command('restore')
    .description('write an empty --data-dir that starts a new one-server cluster from FILE')
    .argument('<file>', 'a file written by flotilla backup')
    .option('--name <name>', "the node's name (default: the backed-up node's)")
    .action(async (file: string, opts: { name?: string }, cmd: Command) => {
      const { runRestore } = await import('./backup');
      await runRestore(globalsOf(cmd).dataDir, file, opts, processOutput());
    });
  program
    .command('recover')
    .description("turn a stopped member's --data-dir into a one-server cluster (quorum lost)")
    .action(async (_opts, cmd: Command) => {
      const { runRecover } = await import('./backup');
      await runRecover(globalsOf(cmd).dataDir, processOutput());
    });
}

function processOutput(): Output {
  return (require('./context') as typeof import('./context')).processOutput;
}

function addKubeconfig(program: Command): void {
  program
    .command('kubeconfig')
    .description("print a kubeconfig for kubectl that points at this agent's --listen address")
    .option('--server <url>', "the API address to write instead of the agent's own")
    .option('--name <name>', 'the name of the cluster, user and context', 'flotilla')
    .action((opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runKubeconfig } = await import('./kubeconfig');
        await runKubeconfig(client, opts, output);
      }),
    );
}

function addVersion(program: Command): void {
  program
    .command('version')
    .description("print the client's and the server's versions")
    .option('--client', "print only the client's version")
    .action(async (opts: { client?: boolean }, cmd: Command) => {
      const { runVersion } = await import('./version-command');
      const write: Output = {
        out: (text) => void process.stdout.write(text),
        err: (text) => void process.stderr.write(text),
      };
      const client = () => {
        const ctx = require('./context') as typeof import('./context');
        return ctx.createClient(globalsOf(cmd));
      };
      await runVersion(client, opts, write);
    });
}

function addInstall(program: Command): void {
  const paths = (cmd: Command) =>
    cmd
      .option('--prefix <dir>', 'the binary is PREFIX/bin/flotilla', '/usr/local')
      .option('--unit-dir <dir>', 'where the systemd unit goes', '/etc/systemd/system')
      .option('--config-dir <dir>', 'where the token file goes', '/etc/flotilla')
      .option('--dry-run', 'print the files and the steps without doing them');
  paths(program.command('install'))
    .description('install this binary as a systemd service running `flotilla agent`')
    .option('--binary <path>', 'the executable to copy (default: this single executable)')
    .option('--name <name>', "this node's name (default: the host name)")
    .option('--listen <host:port>', 'address for cluster traffic')
    .option('--join <host:port>', 'address of a member of the cluster to join')
    .option('--token <token>', 'the join token; kept in a mode 0600 file, not in the unit')
    .option('--voters <n>', 'founder only: voters the cluster grows to')
    .option('--node-grace <seconds>', "a dead node's pods move after this")
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--container-label <k=v>', 'label for every container (repeatable)', collect)
    .action(async (flags, cmd: Command) => {
      const { runInstall } = await import('./install');
      await runInstall(globalsOf(cmd).dataDir, flags, processOutput());
    });
  paths(program.command('uninstall'))
    .description('stop and remove the service; containers and data stay unless --purge')
    .option('--keep-binary', 'leave PREFIX/bin/flotilla in place')
    .option('--purge', "also remove this node's containers and the data directory")
    .action(async (flags, cmd: Command) => {
      const { runUninstall } = await import('./install');
      await runUninstall(globalsOf(cmd).dataDir, flags, processOutput());
    });
}
