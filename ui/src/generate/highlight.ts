// A small syntax highlighter for the Generate view: JSON (Ignition configs) and iPXE scripts.
// Tokens concatenate back to the input exactly.

export type TokenKind = "key" | "string" | "number" | "literal" | "punct" | "comment" | "keyword" | "variable" | "option" | "plain";

export interface Token {
  kind: TokenKind;
  text: string;
}

function pushToken(out: Token[], kind: TokenKind, text: string) {
  if (!text) return;
  const last = out[out.length - 1];
  if (last && last.kind === kind && kind === "plain") last.text += text;
  else out.push({ kind, text });
}

export function highlightJson(src: string): Token[] {
  const out: Token[] = [];
  const re = /("(?:[^"\\]|\\.)*"?)(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b|([{}[\],:])|(\s+)|(.)/gy;
  let m: RegExpExecArray | null;
  re.lastIndex = 0;
  while (re.lastIndex < src.length && (m = re.exec(src))) {
    if (m[1] !== undefined) {
      if (m[2] !== undefined) {
        pushToken(out, "key", m[1]);
        pushToken(out, "punct", m[2]);
      } else pushToken(out, "string", m[1]);
    } else if (m[3] !== undefined) pushToken(out, "number", m[3]);
    else if (m[4] !== undefined) pushToken(out, "literal", m[4]);
    else if (m[5] !== undefined) pushToken(out, "punct", m[5]);
    else pushToken(out, "plain", m[0]);
  }
  return out;
}

const IPXE_COMMANDS = new Set([
  "set", "chain", "kernel", "initrd", "boot", "imgfree", "goto", "echo", "sleep", "prompt", "dhcp", "ifconf",
  "isset", "iseq", "exit", "shell", "reboot", "poweroff", "params", "param", "imgfetch", "module", "imgexec",
  "imgargs", "menu", "item", "choose", "ifopen", "ifclose", "login", "show", "clear", "cpuid", "ntp", "sanboot",
]);

function highlightIpxeWords(line: string, out: Token[]) {
  const re = /(\$\{[^}]*\})|(\s--?[A-Za-z][\w-]*)|(\|\||&&)|(\s+)|([^\s$]+|\$)/gy;
  let m: RegExpExecArray | null;
  let first = true;
  while (re.lastIndex < line.length && (m = re.exec(line))) {
    if (m[1]) pushToken(out, "variable", m[1]);
    else if (m[2]) pushToken(out, "option", m[2]);
    else if (m[3]) {
      pushToken(out, "punct", m[3]);
      first = true;
      continue;
    } else if (m[4]) pushToken(out, "plain", m[4]);
    else if (m[5]) {
      if (first && IPXE_COMMANDS.has(m[5])) pushToken(out, "keyword", m[5]);
      else if (first && m[5].startsWith(":")) pushToken(out, "key", m[5]);
      else pushToken(out, "plain", m[5]);
    }
    if (!m[4]) first = false;
  }
}

export function highlightIpxe(src: string): Token[] {
  const out: Token[] = [];
  const lines = src.split(/(\n)/);
  for (const line of lines) {
    if (line === "\n") pushToken(out, "plain", line);
    else if (/^\s*#/.test(line)) pushToken(out, "comment", line);
    else highlightIpxeWords(line, out);
  }
  return out;
}

export function highlightYaml(src: string): Token[] {
  const out: Token[] = [];
  for (const line of src.split(/(\n)/)) {
    if (line === "\n") pushToken(out, "plain", line);
    else if (/^\s*#/.test(line)) pushToken(out, "comment", line);
    else {
      const m = /^(\s*-?\s*)([\w.-]+)(:)(.*)$/.exec(line);
      if (m) {
        pushToken(out, "plain", m[1]);
        pushToken(out, "key", m[2]);
        pushToken(out, "punct", m[3]);
        pushToken(out, "string", m[4]);
      } else pushToken(out, "plain", line);
    }
  }
  return out;
}

export function highlight(src: string, language: string): Token[] {
  switch (language) {
    case "json":
      return highlightJson(src);
    case "ipxe":
      return highlightIpxe(src);
    case "yaml":
      return highlightYaml(src);
    default:
      return [{ kind: "plain", text: src }];
  }
}
