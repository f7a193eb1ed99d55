// The gateway's HTTP port with maintained clients (@connectrpc/connect-node): Connect JSON and binary, gRPC-Web,
// server streaming, and errors whose details decode with the generated google.rpc types.
// Run by tests/gateway/test_gateway_http.py with TRAINYARD_HTTP_URL, TRAINYARD_TOKEN and TRAINYARD_IMPORT_ID set.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { BadRequestSchema } from "../../clients/typescript/gen/google/rpc/error_details_pb.js";
import { DatasetService } from "../../clients/typescript/gen/trainyard/dataset/v1/dataset_service_pb.js";
import { ImportState } from "../../clients/typescript/gen/trainyard/dataset/v1/dataset_pb.js";
import { ModelZooService } from "../../clients/typescript/gen/trainyard/modelzoo/v1/modelzoo_service_pb.js";

const baseUrl = process.env.TRAINYARD_HTTP_URL;
const token = process.env.TRAINYARD_TOKEN;
const bearer = (next) => async (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const transports = {
  "connect+json": createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer] }),
  "connect+proto": createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true, interceptors: [bearer] }),
  "grpc-web+proto": createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer] }),
};

for (const [name, transport] of Object.entries(transports)) {
  test(`ListModels over ${name}`, async () => {
    const zoo = createClient(ModelZooService, transport);
    const page = await zoo.listModels({ pageSize: 3 });
    assert.equal(page.models.length, 3);
    assert.ok(page.models[0].id && page.models[0].numParams > 0n);
  });

  test(`field violations over ${name}`, async () => {
    const zoo = createClient(ModelZooService, transport);
    await assert.rejects(zoo.listModels({ pageSize: -1 }), (err) => {
      const error = ConnectError.from(err);
      assert.equal(error.code, Code.InvalidArgument);
      const [bad] = error.findDetails(BadRequestSchema);
      assert.equal(bad.fieldViolations[0].field, "page_size");
      return true;
    });
  });

  test(`WatchImport streams over ${name}`, async () => {
    const datasets = createClient(DatasetService, transport);
    const states = [];
    for await (const update of datasets.watchImport({ importId: process.env.TRAINYARD_IMPORT_ID })) {
      states.push(update.status.state);
    }
    assert.equal(states.at(-1), ImportState.SUCCEEDED);
  });
}

test("no token: unauthenticated", async () => {
  const zoo = createClient(ModelZooService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
  await assert.rejects(zoo.listModels({}), (err) => ConnectError.from(err).code === Code.Unauthenticated);
});
