// The one error type of the service-protocol client: a message or frame that cannot be decoded or
// encoded. It never reaches an HTTP client as such: the transport turns it into a `failed` attempt.
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}
