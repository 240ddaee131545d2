/**
 * Benchmark 4 — WebSockets (`/ws/`, one UserHub Durable Object per user, hibernation API).
 * (a) one user, 1 000 concurrent sockets; the user submits 3 async requests; every socket
 *     must receive every progress/completed message of those requests.
 * (b) 200 users × 5 sockets; each user submits 1 request; every socket must receive all
 *     messages of its own user's request and none of anyone else's.
 * Sockets authenticate with single-use tickets (`POST /auth/ws-ticket/`, bearer), because
 * Node's WebSocket cannot set headers. Reports connection setup time, fan-out latency (first
 * socket's `completed` → last socket's) and the VmRSS of the stack's workerd processes.
 */
import {
  BenchFailure,
  benchImage,
  Budget,
  closeAll,
  emulatorControl,
  fmtMs,
  openSocket,
  pool,
  registerUser,
  sleep,
  submitRequest,
  summarize,
  tokenFor,
  waitFor,
  type BenchSocket,
  type BenchUser,
} from "./lib";
import { describeMemory, workerdProcesses, type WorkerdProcess } from "./stack";
import { row, verdict, type BenchContext, type BenchResult, type Benchmark } from "./types";

const A_SOCKETS = 1000;
const A_REQUESTS = 3;
const B_USERS = 200;
const B_SOCKETS_PER_USER = 5;
const CONNECT_CONCURRENCY = 20;
const REGISTER_CONCURRENCY = 4;
const SUBMIT_CONCURRENCY = 4;
const IMAGE_BYTES = 64 * 1024;
const GRACE_MS = 1_000;
const WARM_SOCKETS = 50;
const TIME_LIMIT_A_MS = 240_000;
const TIME_LIMIT_B_MS = 420_000;

const sumKiB = (p: WorkerdProcess[]) => p.reduce((s, x) => s + x.rssKiB, 0);
const mib = (k: number) => `${(k / 1024).toFixed(1)} MiB`;

interface Memory {
  label: string;
  processes: WorkerdProcess[];
  sumKiB: number;
}

function memory(ctx: BenchContext, label: string): Memory {
  const processes = workerdProcesses(ctx.stack.port);
  ctx.log(`ws: memory ${label}: ${describeMemory(processes)}`);
  return { label, processes, sumKiB: sumKiB(processes) };
}

/** "worker 1234: 160 → 839 MiB, proxy 1230: 408 → 496 MiB" */
function byProcess(from: Memory, to: Memory): string {
  return to.processes
    .map((p) => {
      const was = from.processes.find((q) => q.pid === p.pid);
      return `${p.role} ${p.pid}: ${was ? mib(was.rssKiB) : "(new)"} → ${mib(p.rssKiB)}`;
    })
    .join(", ");
}

/** Opens count sockets (token(i) for socket i), keeping going when some fail; failures are returned. */
async function openMany(ctx: BenchContext, budget: Budget, count: number, who: (i: number) => { token: string; owner: string }) {
  const started = performance.now();
  const errors: string[] = [];
  const opened = await pool(count, CONNECT_CONCURRENCY, budget, async (i) => {
    const { token, owner } = who(i);
    try {
      return await openSocket(ctx.stack.baseUrl, token, owner, i);
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
      return null;
    }
  });
  const sockets = opened.filter((s): s is BenchSocket => s !== null);
  return { sockets, errors, wallMs: performance.now() - started, setup: summarize(sockets.map((s) => s.setupMs)) };
}

/** Message texts of the given requests on one socket, sorted (a multiset fingerprint). */
function textsFor(socket: BenchSocket, ids: ReadonlySet<string>): string[] {
  return socket.messages
    .filter((m) => m.request_id !== undefined && ids.has(m.request_id))
    .map((m) => m.text)
    .sort();
}

function completedAt(socket: BenchSocket, id: string): number | undefined {
  return socket.messages.find((m) => m.type === "completed" && m.request_id === id)?.at;
}

export async function partA(ctx: BenchContext, result: BenchResult): Promise<Record<string, unknown>> {
  const budget = new Budget("ws (a)", TIME_LIMIT_A_MS);
  const base = ctx.stack.baseUrl;
  const user = await registerUser(base, "ws-one");
  const token = await tokenFor(base, user.username);
  const images = await Promise.all(Array.from({ length: A_REQUESTS }, (_, i) => benchImage(`ws-a-${i}`, IMAGE_BYTES)));

  // Warm the ticket/upgrade/hub path first, so "before" is not a cold isolate and the growth
  // measured below is mostly the sockets (RSS rarely shrinks again: V8 and the allocator keep it).
  const warm = await openMany(ctx, budget, WARM_SOCKETS, () => ({ token, owner: user.username }));
  await closeAll(warm.sockets);
  await sleep(1_000);
  const before = memory(ctx, "(a) before");
  ctx.log(`ws (a): opening ${A_SOCKETS} sockets for one user`);
  const open = await openMany(ctx, budget, A_SOCKETS, () => ({ token, owner: user.username }));
  const sockets = open.sockets;
  await sleep(500);
  const opened = memory(ctx, `(a) ${sockets.length} sockets open`);
  if (open.errors.length > 0)
    result.failures.push(
      `ws (a): ${open.errors.length} of ${A_SOCKETS} sockets failed to open, e.g. ${open.errors.slice(0, 3).join("; ")}`,
    );

  const ids: string[] = [];
  for (const img of images) ids.push((await submitRequest(base, token, img)).id);
  const idSet = new Set(ids);
  ctx.log(`ws (a): submitted ${ids.length} requests; waiting for ${sockets.length * ids.length} completed messages`);
  const allDone = await waitFor(() => sockets.every((s) => ids.every((id) => completedAt(s, id) !== undefined)), budget, 180_000);
  await sleep(GRACE_MS);
  const afterMessages = memory(ctx, "(a) after the messages, sockets open");

  // Every socket must hold exactly the union of all sockets' messages for these requests.
  const union = new Set<string>();
  for (const s of sockets) for (const t of textsFor(s, idSet)) union.add(t);
  const reference = [...union].sort();
  let socketsMissing = 0;
  let messagesMissing = 0;
  let socketsWithDuplicates = 0;
  let foreign = 0;
  for (const s of sockets) {
    const texts = textsFor(s, idSet);
    const mine = new Set(texts);
    const missing = reference.filter((t) => !mine.has(t)).length;
    if (missing > 0) socketsMissing++;
    messagesMissing += missing;
    if (mine.size !== texts.length) socketsWithDuplicates++;
    foreign += s.messages.filter((m) => m.request_id === undefined || !idSet.has(m.request_id)).length;
  }
  // In arrival order, as the first socket saw the first request.
  const stagesSeen = (sockets[0]?.messages ?? []).filter((m) => m.request_id === ids[0]).map((m) => m.stage ?? m.type);
  const spreads = ids.map((id) => {
    const times = sockets.map((s) => completedAt(s, id)).filter((v): v is number => v !== undefined);
    return times.length > 0 ? Math.max(...times) - Math.min(...times) : NaN;
  });
  const fanout = summarize(spreads.filter(Number.isFinite));
  const perRequest = ids.length > 0 ? reference.length / ids.length : 0;
  const closing = await closeAll(sockets);
  await sleep(2_000);
  const afterClose = memory(ctx, "(a) after close");

  const delivered = sockets.reduce((n, s) => n + textsFor(s, idSet).length, 0);
  const ok = allDone && socketsMissing === 0 && socketsWithDuplicates === 0 && foreign === 0 && open.errors.length === 0;
  result.rows.push(
    row("(a) sockets open (1 user)", `${sockets.length} / ${A_SOCKETS}`, `${A_SOCKETS}`, verdict(sockets.length === A_SOCKETS)),
    row(
      "(a) setup: all sockets (ticket + upgrade + init)",
      `${(open.wallMs / 1000).toFixed(1)} s with ${CONNECT_CONCURRENCY} in flight; per socket p50 ${fmtMs(open.setup.p50)}, p99 ${fmtMs(open.setup.p99)}`,
    ),
    row("(a) messages per request (every socket)", `${perRequest.toFixed(1)} distinct: ${stagesSeen.length} kinds`),
    row(
      "(a) delivered",
      `${delivered} messages = ${sockets.length} sockets × ${reference.length}`,
      "every socket, every message",
      verdict(ok),
    ),
    row(
      "(a) sockets missing messages / with duplicates / foreign msgs",
      `${socketsMissing} / ${socketsWithDuplicates} / ${foreign}`,
      "0 / 0 / 0",
      verdict(socketsMissing + socketsWithDuplicates + foreign === 0),
    ),
    row(
      "(a) fan-out: first → last socket's completed",
      `max ${fmtMs(fanout.max)} (per request ${spreads.map((v) => v.toFixed(1)).join(", ")} ms)`,
    ),
    row(
      "(a) workerd RSS before / open / after msgs / closed",
      `${mib(before.sumKiB)} / ${mib(opened.sumKiB)} / ${mib(afterMessages.sumKiB)} / ${mib(afterClose.sumKiB)}`,
    ),
    row("(a) RSS by process, before → open", byProcess(before, opened)),
    row("(a) RSS per open socket", `${((opened.sumKiB - before.sumKiB) / Math.max(1, sockets.length)).toFixed(1)} KiB`),
    row(
      "(a) clean close (1000)",
      `${closing.clean} / ${sockets.length} in ${fmtMs(closing.ms)}`,
      `${sockets.length}`,
      verdict(closing.clean === sockets.length),
    ),
  );
  if (!allDone) {
    const lacking = sockets.filter((s) => !ids.every((id) => completedAt(s, id) !== undefined)).length;
    result.failures.push(`ws (a): ${lacking} socket(s) never received "completed" for all ${ids.length} requests`);
  }
  if (socketsMissing > 0) result.failures.push(`ws (a): ${socketsMissing} socket(s) missed ${messagesMissing} message(s) in total`);
  if (socketsWithDuplicates > 0) result.failures.push(`ws (a): ${socketsWithDuplicates} socket(s) received a message twice`);
  if (foreign > 0) result.failures.push(`ws (a): ${foreign} unexpected message(s) for other requests`);
  if (closing.clean !== sockets.length) result.notes.push(`(a) close: ${JSON.stringify(closing)}`);
  result.notes.push(`(a) message kinds per request: ${stagesSeen.join(", ")}`);
  return {
    sockets: sockets.length,
    openErrors: open.errors,
    setupWallMs: open.wallMs,
    setupMs: open.setup,
    requestIds: ids,
    messagesPerSocket: reference.length,
    stages: stagesSeen,
    socketsMissing,
    messagesMissing,
    socketsWithDuplicates,
    foreign,
    fanoutSpreadMs: spreads,
    memoryKiB: { before, opened, afterMessages, afterClose },
    close: closing,
  };
}

export async function partB(ctx: BenchContext, result: BenchResult): Promise<Record<string, unknown>> {
  const budget = new Budget("ws (b)", TIME_LIMIT_B_MS);
  const base = ctx.stack.baseUrl;
  ctx.log(`ws (b): registering ${B_USERS} users`);
  const regStarted = performance.now();
  const users: BenchUser[] = await pool(B_USERS, REGISTER_CONCURRENCY, budget, (i) => registerUser(base, `ws-many-${i}`));
  const registerS = (performance.now() - regStarted) / 1000;
  const images = await Promise.all(Array.from({ length: B_USERS }, (_, i) => benchImage(`ws-b-${i}`, IMAGE_BYTES)));

  const before = memory(ctx, "(b) before");
  const total = B_USERS * B_SOCKETS_PER_USER;
  ctx.log(`ws (b): opening ${total} sockets (${B_USERS} users × ${B_SOCKETS_PER_USER})`);
  const open = await openMany(ctx, budget, total, (i) => {
    const u = users[Math.floor(i / B_SOCKETS_PER_USER)]!;
    return { token: u.access, owner: u.username };
  });
  const sockets = open.sockets;
  await sleep(500);
  const opened = memory(ctx, `(b) ${sockets.length} sockets open`);
  if (open.errors.length > 0)
    result.failures.push(`ws (b): ${open.errors.length} of ${total} sockets failed to open, e.g. ${open.errors.slice(0, 3).join("; ")}`);

  const submitStarted = performance.now();
  const requestOf = new Map<string, string>(); // username → request id
  await pool(B_USERS, SUBMIT_CONCURRENCY, budget, async (i) => {
    const u = users[i]!;
    requestOf.set(u.username, (await submitRequest(base, u.access, images[i]!)).id);
  });
  ctx.log(`ws (b): ${B_USERS} requests submitted; waiting for completion on ${sockets.length} sockets`);
  const allDone = await waitFor(() => sockets.every((s) => completedAt(s, requestOf.get(s.owner)!) !== undefined), budget, 300_000, 100);
  const allDoneS = (performance.now() - submitStarted) / 1000;
  await sleep(GRACE_MS);
  const afterMessages = memory(ctx, "(b) after the messages, sockets open");

  const byUser = new Map<string, BenchSocket[]>();
  for (const s of sockets) byUser.set(s.owner, [...(byUser.get(s.owner) ?? []), s]);
  let socketsMissing = 0;
  let messagesMissing = 0;
  let foreign = 0;
  let socketsWithDuplicates = 0;
  const foreignExamples: string[] = [];
  const spreads: number[] = [];
  let delivered = 0;
  for (const [owner, group] of byUser) {
    const own = requestOf.get(owner)!;
    const ownSet = new Set([own]);
    const union = new Set<string>();
    for (const s of group) for (const t of textsFor(s, ownSet)) union.add(t);
    for (const s of group) {
      const texts = textsFor(s, ownSet);
      delivered += texts.length;
      const mine = new Set(texts);
      const missing = [...union].filter((t) => !mine.has(t)).length;
      if (missing > 0 || completedAt(s, own) === undefined) socketsMissing++;
      messagesMissing += missing;
      if (mine.size !== texts.length) socketsWithDuplicates++;
      const others = s.messages.filter((m) => m.request_id !== own);
      foreign += others.length;
      if (others.length > 0 && foreignExamples.length < 3) foreignExamples.push(`${owner}#${s.index} got ${others[0]!.text.slice(0, 160)}`);
    }
    const times = group.map((s) => completedAt(s, own)).filter((v): v is number => v !== undefined);
    if (times.length > 1) spreads.push(Math.max(...times) - Math.min(...times));
  }
  const fanout = summarize(spreads);
  const closing = await closeAll(sockets);
  await sleep(2_000);
  const afterClose = memory(ctx, "(b) after close");

  const ok = allDone && socketsMissing === 0 && foreign === 0 && socketsWithDuplicates === 0 && open.errors.length === 0;
  result.rows.push(
    row(
      `(b) sockets open (${B_USERS} users × ${B_SOCKETS_PER_USER})`,
      `${sockets.length} / ${total}`,
      `${total}`,
      verdict(sockets.length === total),
    ),
    row(
      "(b) setup: all sockets (ticket + upgrade + init)",
      `${(open.wallMs / 1000).toFixed(1)} s with ${CONNECT_CONCURRENCY} in flight; per socket p50 ${fmtMs(open.setup.p50)}, p99 ${fmtMs(open.setup.p99)}`,
    ),
    row(
      "(b) delivered",
      `${delivered} messages; all ${B_USERS} requests completed on every socket ${allDone ? `${allDoneS.toFixed(1)} s after the first submit` : "NOT within the limit"}`,
      "every socket, own messages only",
      verdict(ok),
    ),
    row(
      "(b) sockets missing messages / with duplicates / foreign msgs",
      `${socketsMissing} / ${socketsWithDuplicates} / ${foreign}`,
      "0 / 0 / 0",
      verdict(socketsMissing + socketsWithDuplicates + foreign === 0),
    ),
    row(
      "(b) fan-out within a user: first → last socket's completed",
      `p50 ${fmtMs(fanout.p50)}, p99 ${fmtMs(fanout.p99)}, max ${fmtMs(fanout.max)}`,
    ),
    row(
      "(b) workerd RSS before / open / after msgs / closed",
      `${mib(before.sumKiB)} / ${mib(opened.sumKiB)} / ${mib(afterMessages.sumKiB)} / ${mib(afterClose.sumKiB)}`,
    ),
    row("(b) RSS by process, before → open", byProcess(before, opened)),
    row("(b) RSS per open socket (200 hubs)", `${((opened.sumKiB - before.sumKiB) / Math.max(1, sockets.length)).toFixed(1)} KiB`),
    row(
      "(b) clean close (1000)",
      `${closing.clean} / ${sockets.length} in ${fmtMs(closing.ms)}`,
      `${sockets.length}`,
      verdict(closing.clean === sockets.length),
    ),
  );
  if (!allDone)
    result.failures.push(
      `ws (b): ${sockets.filter((s) => completedAt(s, requestOf.get(s.owner)!) === undefined).length} socket(s) never received their request's "completed"`,
    );
  if (socketsMissing > 0)
    result.failures.push(`ws (b): ${socketsMissing} socket(s) missed ${messagesMissing} message(s) of their own request`);
  if (socketsWithDuplicates > 0) result.failures.push(`ws (b): ${socketsWithDuplicates} socket(s) received a message twice`);
  if (foreign > 0)
    result.failures.push(`ws (b): ${foreign} message(s) reached sockets of another user, e.g. ${foreignExamples.join("; ")}`);
  if (closing.clean !== sockets.length) result.notes.push(`(b) close: ${JSON.stringify(closing)}`);
  return {
    users: B_USERS,
    socketsPerUser: B_SOCKETS_PER_USER,
    registerSeconds: registerS,
    sockets: sockets.length,
    openErrors: open.errors,
    setupWallMs: open.wallMs,
    setupMs: open.setup,
    allCompletedSeconds: allDoneS,
    socketsMissing,
    messagesMissing,
    socketsWithDuplicates,
    foreign,
    foreignExamples,
    fanoutSpreadMs: fanout,
    memoryKiB: { before, opened, afterMessages, afterClose },
    close: closing,
  };
}

export const wsBench: Benchmark = async (ctx, result) => {
  if (ctx.stack.emulatorUrl) {
    await emulatorControl(ctx.stack.emulatorUrl, "plant-id", { latencyMs: 0 });
    await emulatorControl(ctx.stack.emulatorUrl, "plantnet", { latencyMs: 0 });
  }
  if (workerdProcesses(ctx.stack.port).length === 0)
    result.notes.push(`no workerd process with --socket-addr=entry=127.0.0.1:${ctx.stack.port} found: memory figures are empty`);
  const a = await partA(ctx, result);
  const b = await partB(ctx, result).catch((err) => {
    if (err instanceof BenchFailure) {
      result.failures.push(err.message);
      return { error: err.message };
    }
    throw err;
  });
  result.data = { a, b };
};
