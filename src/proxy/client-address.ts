// The address of the client a request came from, through PROXY protocol and TLS wrapping.

type ProxiedSocket = {
  proxiedAddress?: string;
  remoteAddress?: string;
  _parent?: { proxiedAddress?: string } | null;
  _handle?: { _parentWrap?: { stream?: { proxiedAddress?: string } } } | null;
};

/** PROXY protocol: the address sits on the raw connection, which a TLS socket wraps as `_parent` (a net.Socket) or through its handle (a stream). */
function proxiedAddressOf(socket: ProxiedSocket): string | undefined {
  return socket.proxiedAddress ?? socket._parent?.proxiedAddress ?? socket._handle?._parentWrap?.stream?.proxiedAddress;
}

/** The client's address: from the PROXY header when the listener has one in front, else the peer's; IPv4-mapped IPv6 unwrapped. */
export function clientIpOf(req: { socket?: unknown }, proxied: boolean): string {
  const socket = req.socket as unknown as ProxiedSocket | undefined;
  const ip = (proxied && socket ? proxiedAddressOf(socket) : undefined) ?? socket?.remoteAddress ?? '';
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

