import { eventLine } from "../../src/client/cli/lines.js";
import type { Download } from "../../src/client/download/download.js";
import type { DownloadListener } from "../../src/client/download/events.js";
import { downloadEvent } from "../../src/client/engine/views.js";

/** A download's news as the shell prints it, pushed to `lines` (progress is not printed). */
export function newsLines(lines: string[], download: () => Download): DownloadListener {
  return (n) => {
    const said = eventLine(downloadEvent(download(), n));
    if (said) lines.push(said.line);
  };
}
