// WeCom counts message limits in UTF-8 bytes (a Chinese character is 3), not characters.
export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length
}

/** The path of a URL the API built from PUBLIC_BASE_URL, so links stay on the console's own origin. */
export function samePath(url: string): string {
  try {
    const parsed = new URL(url, 'http://x')
    return parsed.pathname + parsed.search
  } catch {
    return url
  }
}
