// The API over the gateway's HTTP port: the generated TypeScript client on Connect (binary), the key kept
// for this browser session only.
import { create, type DescEnum, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { endStreamFromJson } from "@connectrpc/connect/protocol-connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { BadRequestSchema, ErrorInfoSchema } from "../../clients/typescript/gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../clients/typescript/gen/trainyard/auth/v1/auth_service_pb.js";
import {
  CreateDatasetRequestSchema,
  type CreateDatasetResponse,
  CreateDatasetResponseSchema,
  DatasetService,
} from "../../clients/typescript/gen/trainyard/dataset/v1/dataset_service_pb.js";
import { ModelZooService } from "../../clients/typescript/gen/trainyard/modelzoo/v1/modelzoo_service_pb.js";
import { RecommendationService } from "../../clients/typescript/gen/trainyard/recommend/v1/recommend_service_pb.js";
import { TrainingService } from "../../clients/typescript/gen/trainyard/training/v1/training_service_pb.js";

const TOKEN_KEY = "trainyard.token";

export function token(): string {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(value: string): void {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

const bearer: Interceptor = (next) => async (req) => {
  req.header.set("authorization", `Bearer ${token()}`);
  return next(req);
};

const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [bearer] });

export const auth = createClient(AuthService, transport);
export const datasets = createClient(DatasetService, transport);
export const zoo = createClient(ModelZooService, transport);
export const recommend = createClient(RecommendationService, transport);
export const training = createClient(TrainingService, transport);

/** Field violations of an error: field path -> what is wrong with it. */
export function fieldErrors(err: unknown): Map<string, string> {
  const found = new Map<string, string>();
  for (const bad of ConnectError.from(err).findDetails(BadRequestSchema)) {
    for (const v of bad.fieldViolations) found.set(v.field, v.description);
  }
  return found;
}

export function errorInfo(err: unknown): Record<string, string> {
  const [info] = ConnectError.from(err).findDetails(ErrorInfoSchema);
  return info ? { ...info.metadata } : {};
}

export function describe(err: unknown): string {
  const error = ConnectError.from(err);
  return `${Code[error.code] ?? "Error"}: ${error.rawMessage}`;
}

export function isUnauthenticated(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Unauthenticated;
}

/** The short name of an enum value ("TASK_TYPE_CLASSIFICATION" -> "classification"). */
export function enumName(schema: DescEnum, value: number): string {
  const found = schema.values.find((v) => v.number === value);
  return found ? found.localName.toLowerCase().replaceAll("_", " ") : String(value);
}

const CHUNK = 1 << 20;

function envelope(flags: number, size: number): Uint8Array {
  const head = new Uint8Array(5);
  head[0] = flags;
  new DataView(head.buffer).setUint32(1, size);
  return head;
}

/**
 * CreateDataset from the browser: a Connect client stream sent as one request body (metadata, then the file in
 * 1 MiB chunks), so the upload shows its progress. The file is never read into memory: each chunk message is
 * its field header (written by protobuf's BinaryWriter) and a slice of the file.
 */
export function uploadDataset(
  file: File,
  metadata: { name: string; description: string; valFraction: number },
  onProgress: (sent: number, total: number) => void,
): Promise<CreateDatasetResponse> {
  const first = toBinary(CreateDatasetRequestSchema, create(CreateDatasetRequestSchema, { payload: { case: "metadata", value: metadata } }));
  const parts: BlobPart[] = [envelope(0, first.length), first as BlobPart];
  for (let at = 0; at < file.size; at += CHUNK) {
    const slice = file.slice(at, Math.min(at + CHUNK, file.size));
    const field = new BinaryWriter().tag(2, WireType.LengthDelimited).uint32(slice.size).finish();
    parts.push(envelope(0, field.length + slice.size), field as BlobPart, slice);
  }
  const body = new Blob(parts);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `${location.origin}/trainyard.dataset.v1.DatasetService/CreateDataset`);
    xhr.responseType = "arraybuffer";
    xhr.setRequestHeader("content-type", "application/connect+proto");
    xhr.setRequestHeader("connect-protocol-version", "1");
    xhr.setRequestHeader("authorization", `Bearer ${token()}`);
    xhr.upload.onprogress = (event) => onProgress(event.loaded, event.total || body.size);
    xhr.onerror = () => reject(new ConnectError("the upload did not reach the gateway", Code.Unavailable));
    xhr.onload = () => {
      const data = new Uint8Array(xhr.response as ArrayBuffer);
      if (xhr.status !== 200) {
        const text = new TextDecoder().decode(data);
        try {
          reject(endStreamFromJson(`{"error":${text}}`).error ?? new ConnectError(text, Code.Unknown));
        } catch {
          reject(new ConnectError(`HTTP ${xhr.status}: ${text}`, Code.Unknown));
        }
        return;
      }
      let result: CreateDatasetResponse | undefined;
      for (let at = 0; at + 5 <= data.length; ) {
        const flags = data[at];
        const size = new DataView(data.buffer, at + 1, 4).getUint32(0);
        const payload = data.subarray(at + 5, at + 5 + size);
        at += 5 + size;
        if (flags & 0b10) {
          const end = endStreamFromJson(payload);
          if (end.error) return reject(end.error);
        } else {
          result = fromBinary(CreateDatasetResponseSchema, payload);
        }
      }
      if (result) resolve(result);
      else reject(new ConnectError("the gateway answered without a dataset", Code.Internal));
    };
    xhr.send(body);
  });
}
