/**
 * The TypeScript client of Tzurot's contracts.
 *
 * Messages and service descriptors are generated from proto/ by buf (protoc-gen-es) into
 * src/gen; this module adds the transports a client needs to reach the mesh:
 * - `grpcTransport`: gRPC over HTTP/2 with mutual TLS, straight to a service (as `cli`);
 * - `grpcWebTransport`: gRPC-web over HTTPS (HTTP/1.1) through the Envoy edge, which a
 *   browser-style client uses; the edge also asks for a client certificate.
 * The server's certificate is checked against the CA and the service identity it must name
 * (its SPIFFE identity is also a DNS name in its certificate), not against the address.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

export { Code, ConnectError, createClient };
export type { Client, Transport };

/** A certificate folder as `tzurot certs` and cert-manager write it: ca.crt, tls.crt, tls.key. */
export interface Identity {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function loadIdentity(dir: string): Identity {
  return {
    ca: readFileSync(join(dir, "ca.crt")),
    cert: readFileSync(join(dir, "tls.crt")),
    key: readFileSync(join(dir, "tls.key")),
  };
}

export interface Target {
  /** host:port */
  address: string;
  /** The identity the server's certificate must name: "gateway", "edge", "keyvault", ... */
  serverIdentity: string;
  /** Who we are (the certificate we present). */
  identity: Identity;
}

function tlsOptions(target: Target) {
  const { ca, cert, key } = target.identity;
  return { ca, cert, key, servername: target.serverIdentity, rejectUnauthorized: true };
}

/** gRPC over HTTP/2 with mutual TLS. */
export function grpcTransport(target: Target): Transport {
  return createGrpcTransport({
    baseUrl: `https://${target.address}`,
    nodeOptions: tlsOptions(target),
  });
}

/** gRPC-web over HTTPS/1.1 (the Envoy edge's grpc_web filter), with a client certificate. */
export function grpcWebTransport(target: Target): Transport {
  return createGrpcWebTransport({
    baseUrl: `https://${target.address}`,
    httpVersion: "1.1",
    nodeOptions: tlsOptions(target),
  });
}

/** A typed client of any generated service, e.g. `client(GatewayService, transport)`. */
export function client<T extends DescService>(service: T, transport: Transport): Client<T> {
  return createClient(service, transport);
}

export * from "./gen/tzurot/v1/common_pb.js";
export * from "./gen/tzurot/v1/gateway_pb.js";
export * from "./gen/tzurot/v1/inference_pb.js";
export * from "./gen/tzurot/v1/keyvault_pb.js";
export * from "./gen/tzurot/v1/memory_pb.js";
export { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
