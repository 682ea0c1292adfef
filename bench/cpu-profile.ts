import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session, type Profiler } from 'node:inspector';
import { relative } from 'node:path';

/**
 * CPU accounting for the benchmarks: a V8 CPU profile of this process (what `node --cpu-prof`
 * writes, started and stopped around one phase through node:inspector) summarised by self time,
 * and the CPU seconds of this process's descendants (the emulators: DynamoDB Local's JVM, fauxqs).
 */
export interface CpuProfiler {
  /** Stops profiling and writes the profile; returns its path and the profile. */
  stop(label: string): Promise<{ file: string; profile: Profiler.Profile }>;
}

export async function startCpuProfile(): Promise<CpuProfiler> {
  const session = new Session();
  session.connect();
  const post = <T>(method: string, params?: object) =>
    new Promise<T>((resolve, reject) => session.post(method, params ?? {}, (err, out) => (err ? reject(err) : resolve(out as T))));
  await post('Profiler.enable');
  await post('Profiler.start');
  return {
    async stop(label) {
      const { profile } = await post<{ profile: Profiler.Profile }>('Profiler.stop');
      await post('Profiler.disable');
      session.disconnect();
      const file = `/tmp/${label}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`;
      writeFileSync(file, JSON.stringify(profile));
      return { file, profile };
    },
  };
}

/** A profile node's file: inside its package (node_modules), in this repository, node's own, or '' (V8 and native code). */
function codeFile(url: string, root: string): string {
  const path = url.replace(/^file:\/\//, '');
  const nm = path.lastIndexOf('/node_modules/');
  if (nm >= 0) return path.slice(nm + '/node_modules/'.length);
  return path.startsWith(root) ? relative(root, path) : path;
}

/** Where a profile node's code lives: a package, a file of this repository, a module of node's, or V8 and native code. */
export function codeGroup(url: string, functionName: string, root: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : `(native) ${functionName || '(anonymous)'}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  const file = codeFile(url, root);
  if (file !== relative(root, url.replace(/^file:\/\//, '')))
    return file
      .split('/')
      .slice(0, file.startsWith('@') ? 2 : 1)
      .join('/');
  return file;
}

/** A coarser bucket of a group, to read where the CPU goes at a glance. */
export function category(group: string): string {
  if (group === '(garbage collector)') return 'garbage collection';
  if (group === '(idle)' || group === '(program)') return 'idle, or V8 outside JavaScript (program)';
  if (/^@(smithy|aws-sdk|aws-crypto)\//.test(group)) return 'AWS SDK (middleware, endpoints, retries, signing, serde, marshalling)';
  if (group.startsWith('node:') || group.startsWith('(native)')) return 'node runtime (HTTP, sockets incl. writev, streams, promises, crypto, JSON)';
  if (/^(lib|functions)\//.test(group)) return 'this repository: handlers, app and domain code (lib/, functions/)';
  if (/^(local|tools|bench)\//.test(group)) return 'this repository: local stack, tools and bench (local/, tools/, bench/)';
  return `${group} (other package)`;
}

export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/** Self time by function (name, group, line) and by group, largest first. */
export function selfTimes(profile: Profiler.Profile, root: string): { total: number; functions: SelfTime[]; groups: SelfTime[]; categories: SelfTime[] } {
  const byNode = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; the sample's stack ran until the next one.
  samples.forEach((id, i) => byNode.set(id, (byNode.get(id) ?? 0) + (deltas[i + 1] ?? 0) / 1000));
  const functions = new Map<string, number>();
  const groups = new Map<string, number>();
  const categories = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const ms = byNode.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const group = codeGroup(url, functionName, root);
    const where = url === '' ? group : `${functionName || '(anonymous)'}  [${codeFile(url, root)}:${lineNumber + 1}]`;
    functions.set(where, (functions.get(where) ?? 0) + ms);
    groups.set(group, (groups.get(group) ?? 0) + ms);
    categories.set(category(group), (categories.get(category(group)) ?? 0) + ms);
    total += ms;
  }
  const ranked = (m: Map<string, number>) => [...m.entries()].map(([name, ms]) => ({ name, ms, share: ms / total })).sort((a, b) => b.ms - a.ms);
  return { total, functions: ranked(functions), groups: ranked(groups), categories: ranked(categories) };
}

/** CPU seconds used so far by each descendant of this process, named by what it runs (Linux /proc; empty elsewhere). */
export function descendantCpuSeconds(): Map<string, number> {
  const out = new Map<string, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return out;
  }
  const info = new Map<number, { ppid: number; cpu: number; name: string }>();
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after "(comm)": state ppid ... utime (14th field) stime (15th), in clock ticks (100/s).
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const name = /java/.test(cmdline)
        ? 'DynamoDB Local (java)'
        : /fauxqs/.test(cmdline)
          ? 'fauxqs'
          : /dynamodb-local/.test(cmdline)
            ? 'DynamoDB Local launcher'
            : cmdline.slice(0, 40);
      info.set(Number(pid), { ppid: Number(rest[1]), cpu: (Number(rest[11]) + Number(rest[12])) / 100, name });
    } catch {
      // The process ended while we looked.
    }
  }
  const mine = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, p] of info) {
      if (!mine.has(pid) && mine.has(p.ppid)) {
        mine.add(pid);
        grew = true;
        out.set(p.name, (out.get(p.name) ?? 0) + p.cpu);
      }
    }
  }
  return out;
}
