/**
 * A small program that drives the mesh through this client, for the end-to-end test
 * (tests/e2e/test_ts_client.py) and as an example of using it.
 *
 * Reads one JSON object from the TZUROT_SMOKE environment variable:
 *   {pki, gateway, edge, keyvault, actor: {user_id, display_name}, personality, content}
 * (both conversations happen in one channel, so the second has the first in its history)
 * where pki is a folder of certificate folders (pki/cli/{ca.crt,tls.crt,tls.key}) and the
 * addresses are host:port. Prints one JSON report on stdout; exits 1 on any unexpected error.
 */
import { create } from "@bufbuild/protobuf";
import { join } from "node:path";

import {
  client,
  Code,
  ConnectError,
  DecryptRequestSchema,
  ErrorInfoSchema,
  GatewayService,
  JobStatus,
  grpcTransport,
  grpcWebTransport,
  KeyVaultService,
  loadIdentity,
  type Transport,
} from "./index.js";

interface Config {
  pki: string;
  gateway: string;
  edge: string;
  keyvault: string;
  actor: { user_id: string; display_name: string };
  personality: string;
  content: string;
}

interface Conversation {
  personalities: string[];
  events: string[];
  chunks: string;
  finished: string;
  jobId: string;
  replayed: boolean;
  status: string;
  deliveredAt: boolean;
}

async function converse(
  transport: Transport,
  config: Config,
  channel: string,
  key: string,
  content: string,
): Promise<Conversation> {
  const gateway = client(GatewayService, transport);
  const actor = { userId: config.actor.user_id, displayName: config.actor.display_name };
  const listed = await gateway.listPersonalities({ actor });
  const events: string[] = [];
  let chunks = "";
  let finished = "";
  let jobId = "";
  let replayed = false;
  const stream = gateway.generate({
    actor,
    location: { channelId: channel },
    personality: config.personality,
    content,
    idempotencyKey: key,
    messageIds: [key],
  });
  for await (const response of stream) {
    const event = response.event;
    events.push(event.case ?? "none");
    if (event.case === "accepted") {
      jobId = event.value.jobId;
      replayed = event.value.replayed;
    } else if (event.case === "chunk") {
      chunks += event.value.text;
    } else if (event.case === "finished") {
      finished = event.value.content;
    }
  }
  const confirmed = await gateway.confirmDelivery({ jobId, messageIds: [`answer-${key}`] });
  const status = await gateway.getJobStatus({ key: { case: "jobId", value: jobId }, actor });
  return {
    personalities: listed.personalities.map((p) => p.displayName),
    events,
    chunks,
    finished,
    jobId,
    replayed,
    status: JobStatus[confirmed.job?.status ?? JobStatus.UNSPECIFIED],
    deliveredAt: status.job?.deliveredAt !== undefined,
  };
}

async function keyvaultRefusal(config: Config, transport: Transport) {
  const keyvault = client(KeyVaultService, transport);
  try {
    await keyvault.decrypt(create(DecryptRequestSchema, { userId: config.actor.user_id, provider: "openrouter" }));
    return { code: "OK", message: "", reason: "" };
  } catch (error) {
    const err = ConnectError.from(error);
    const [info] = err.findDetails(ErrorInfoSchema);
    return { code: Code[err.code], message: err.rawMessage, reason: info?.reason ?? "" };
  }
}

async function main(): Promise<void> {
  const config = JSON.parse(process.env.TZUROT_SMOKE ?? "{}") as Config;
  const cli = loadIdentity(join(config.pki, "cli"));
  const direct = grpcTransport({ address: config.gateway, serverIdentity: "gateway", identity: cli });
  const web = grpcWebTransport({ address: config.edge, serverIdentity: "edge", identity: cli });
  const run = Date.now().toString(36);
  const channel = `ts:${run}`;
  const report = {
    grpc: await converse(direct, config, channel, `ts-grpc-${run}`, `${config.content} (grpc)`),
    grpcWeb: await converse(web, config, channel, `ts-web-${run}`, `${config.content} (grpc-web)`),
    keyvault: await keyvaultRefusal(
      config,
      grpcTransport({ address: config.keyvault, serverIdentity: "keyvault", identity: cli }),
    ),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((error: unknown) => {
  const err = ConnectError.from(error);
  process.stderr.write(`smoke: [${Code[err.code]}] ${err.rawMessage}\n`);
  process.exit(1);
});
