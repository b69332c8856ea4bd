// Unit tests of the panel's message channel (node's test runner): replies resolve, error replies and
// timeouts reject, dispose rejects what is pending, and a handler's throw becomes an error reply.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type Envelope, MessageChannel, RequestTimeoutError } from "./protocol";

type Msg = { type: string; value?: number };

/** Two channels wired back to back, as the host and the webview are, through a queue like postMessage's. */
function pair(handleB: (body: Msg) => Promise<Msg | undefined> | Msg | undefined, timeoutMs = 1000) {
  let a!: MessageChannel<Msg, Msg>;
  let b!: MessageChannel<Msg, Msg>;
  const deliver = (to: () => MessageChannel<Msg, Msg>) => (message: Envelope<Msg>) =>
    void Promise.resolve().then(() => to().receive(structuredClone(message)));
  a = new MessageChannel<Msg, Msg>(
    deliver(() => b),
    () => undefined,
    timeoutMs,
  );
  b = new MessageChannel<Msg, Msg>(
    deliver(() => a),
    handleB,
    timeoutMs,
  );
  return { a, b };
}

test("a request resolves with the reply", async () => {
  const { a } = pair((body) => ({ type: "double", value: (body.value ?? 0) * 2 }));
  const reply = await a.request<Msg>({ type: "ask", value: 21 });
  assert.deepEqual(reply, { type: "double", value: 42 });
});

test("a handler that throws makes the request reject with its message", async () => {
  const { a } = pair(() => {
    throw new Error("daemon unreachable");
  });
  await assert.rejects(a.request({ type: "ask" }), /daemon unreachable/);
});

test("a request with no reply rejects after its timeout", async () => {
  const { a } = pair(() => undefined, 50);
  const started = Date.now();
  await assert.rejects(a.request({ type: "ask" }), RequestTimeoutError);
  assert.ok(Date.now() - started >= 45);
});

test("dispose rejects pending requests; a late reply is ignored", async () => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const { a } = pair(async () => {
    await gate;
    return { type: "late" };
  });
  const pending = a.request({ type: "ask" });
  a.dispose("panel closed");
  await assert.rejects(pending, /panel closed/);
  release();
});

test("replies are matched by id when several requests are in flight", async () => {
  const { a } = pair(async (body) => {
    await new Promise((resolve) => setTimeout(resolve, body.value === 1 ? 30 : 0));
    return { type: "echo", value: body.value };
  });
  const replies = await Promise.all([1, 2, 3].map((value) => a.request<Msg>({ type: "ask", value })));
  assert.deepEqual(
    replies.map((r) => r.value),
    [1, 2, 3],
  );
});
