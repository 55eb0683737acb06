/**
 * Splits a command line into words: whitespace separates; "double" or 'single'
 * quotes keep spaces; a backslash escapes the next character (outside single quotes);
 * in double quotes \xHH is the character with that code.
 * Returns an error string for an unterminated quote.
 */
export function tokenize(line: string): string[] | { error: string } {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && /^x[0-9a-fA-F]{2}/.test(line.slice(i + 1, i + 4))) {
        // \xHH: how quoteWord shows a control character, so what it prints reads back
        word += String.fromCharCode(Number.parseInt(line.slice(i + 2, i + 4), 16));
        i += 3;
      } else if (c === "\\" && quote === '"' && i + 1 < line.length) word += line[++i];
      else word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) return { error: `unterminated ${quote === '"' ? "double" : "single"} quote` };
  if (inWord) words.push(word);
  return words;
}

/**
 * Quotes a word for display so that it can be pasted back into a command.
 * Control characters are shown escaped: a name from a tracker must never drive
 * the user's terminal.
 */
export function quoteWord(word: string): string {
  if (/^[^\s"'\\\u0000-\u001f\u007f]+$/.test(word)) return word;
  const escaped = word
    .replace(/(["\\])/g, "\\$1")
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
  return `"${escaped}"`;
}
