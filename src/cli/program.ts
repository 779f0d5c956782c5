/**
 * The `flotilla` command line: every subcommand, its flags and help texts.
 * Actions load their modules only when they run.
 */
import { Command, Option } from 'commander';
import type { ApiClient } from '../api/client';
import { InvalidError } from '../errors';
import type { GlobalOptions, Output } from './context';

// Only commander is loaded up front. Each action imports its own module, so
// `flotilla version --client` and `--help` stay as fast as node itself.

type ClientAction = (client: ApiClient, output: Output) => Promise<void>;

async function withClient(cmd: Command, action: ClientAction): Promise<void> {
  const ctx = await import('./context');
  await action(ctx.createClient(globalsOf(cmd)), ctx.processOutput);
}

function globalsOf(cmd: Command): GlobalOptions {
  const opts = cmd.optsWithGlobals<GlobalOptions>();
  const sources = {
    dataDir: cmd.getOptionValueSourceWithGlobals('dataDir'),
    server: cmd.getOptionValueSourceWithGlobals('server'),
    token: cmd.getOptionValueSourceWithGlobals('token'),
  };
  // An exported but empty variable (FLOTILLA_SERVER=) counts as unset, as in most tools.
  if (opts.server === '') opts.server = sources.server = undefined;
  if (opts.token === '') opts.token = sources.token = undefined;
  if (opts.dataDir === '') [opts.dataDir, sources.dataDir] = [DEFAULT_DATA_DIR, 'default'];
  return { ...opts, sources };
}

/**
 * The join token of `agent` and `install`, whose own --token predates the
 * global one. Commander gives an option the program and a subcommand both
 * define to the program, wherever it stands on the line, so the subcommand
 * only ever sees its environment variable (FLOTILLA_TOKEN). A --token typed
 * on the line is therefore read back from the program; FLOTILLA_API_TOKEN,
 * the global option's variable, is never taken for a join token.
 */
export function joinTokenOf(cmd: Command, own: string | undefined): string | undefined {
  const root = rootOf(cmd);
  if (root.getOptionValueSource('token') === 'cli') return root.opts<{ token?: string }>().token;
  return own;
}

function rootOf(cmd: Command): Command {
  let root = cmd;
  while (root.parent) root = root.parent;
  return root;
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
    .addOption(
      new Option('--server <url>', 'talk to a remote agent at https://HOST:PORT instead').env(
        'FLOTILLA_SERVER',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'bearer token for --server (for agent and install: the join token)',
      ).env('FLOTILLA_API_TOKEN'),
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
  addLogin(program);
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
      new Option('--token <token>', 'the join token (flotilla token create)').env('FLOTILLA_TOKEN'),
    )
    .option('--voters <n>', 'founder only: voters the cluster grows to, up to 5 (default 3)')
    .option('--node-grace <seconds>', "a dead node's pods move after this (default 5)")
    .option('--log-level <level>', 'trace, debug, info, warn or error')
    .option('--container-label <k=v>', 'label for every container (repeatable)', collect)
    .action(async (flags, cmd: Command) => {
      const { runAgentCommand } = await import('./agent');
      const token = joinTokenOf(cmd, flags.token);
      await runAgentCommand(globalsOf(cmd).dataDir, { ...flags, token });
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
    .description(`list objects or show some; ${KINDS_HELP}, or events (ev)`)
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
  const token = program
    .command('token')
    .description('manage bearer tokens: join tokens for servers, admin and read-only for people');
  token
    .command('create')
    .description('create a token and print it alone on stdout (its id and expiry on stderr)')
    .option('--role <role>', 'join (for `flotilla agent --join`), admin or read-only', 'join')
    .option('--ttl <duration>', "lifetime: 90s, 15m, 24h, 7d, or 0 for never (default: server's)")
    .option('--description <text>', 'a note shown by token list')
    .action((opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runTokenCreate } = await import('./token');
        await runTokenCreate(client, opts, output);
      }),
    );
  token
    .command('list')
    .description('list tokens (never their secrets): ID ROLE CREATED EXPIRES DESCRIPTION')
    .option('-o, --output <format>', 'json or yaml instead of the table')
    .action((opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runTokenList } = await import('./token');
        await runTokenList(client, opts, output);
      }),
    );
  token
    .command('revoke')
    .description('revoke tokens at once; a node that already joined stays')
    .argument('<ids...>', 'token IDs as token list shows them (or whole tokens)')
    .action((ids: string[], _opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runTokenRevoke } = await import('./token');
        await runTokenRevoke(client, ids, output);
      }),
    );
}

function addLogin(program: Command): void {
  program
    .command('login')
    .description(
      'check --server and --token (pinning the CA the token names) and save them, ' +
        'with the CA, for later commands (FLOTILLA_CONFIG, else ~/.config/flotilla/config.yaml)',
    )
    .action(async (_opts, cmd: Command) => {
      const { runLogin } = await import('./token');
      const { configPath } = await import('./config-file');
      const globals = globalsOf(cmd);
      await runLogin(globals.server, globals.token, configPath(process.env), processOutput());
    });
  program
    .command('logout')
    .description('remove the config file flotilla login wrote')
    .action(async () => {
      const { runLogout } = await import('./token');
      const { configPath } = await import('./config-file');
      await runLogout(configPath(process.env), processOutput());
    });
}

function addBackup(program: Command): void {
  program
    .command('backup')
    .description("save a consistent copy of the running agent's state to FILE")
    .argument('<file>', 'where to write the backup')
    .action(async (file: string, _opts, cmd: Command) => {
      const globals = globalsOf(cmd);
      if (globals.server !== undefined) {
        // The backup holds the CA key: it never leaves the server over the network.
        throw new InvalidError(
          'backup works only on a server, through its local socket (--data-dir)',
        );
      }
      const { runBackup } = await import('./backup');
      await runBackup(globals.dataDir, file, processOutput());
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
    .description(
      'create a token and print a kubeconfig for kubectl with it and the cluster CA; the ' +
        "server is --server when given, else the agent's --listen address",
    )
    .option('--role <role>', 'admin or read-only', 'admin')
    .option('--ttl <duration>', "the token's lifetime: 90s, 15m, 24h, 7d, or 0 for never")
    .option('--name <name>', 'the name of the cluster, user and context', 'flotilla')
    .action((opts, cmd: Command) =>
      withClient(cmd, async (client, output) => {
        const { runKubeconfig } = await import('./kubeconfig');
        await runKubeconfig(client, opts, output, client.server);
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
      const token = joinTokenOf(cmd, flags.token);
      await runInstall(globalsOf(cmd).dataDir, { ...flags, token }, processOutput());
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
