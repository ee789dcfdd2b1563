// Opens a sinklab report page in Debian's headless Chromium, driven by playwright-core (npm,
// scripts/setup.sh), with the network cut, and checks what a reader would see:
//   every Vega figure drawn (each view has marks), a tooltip on hovering a point of the first chart,
//   every image decoded, no console message or page error, no request other than the page's own file.
// Saves a screenshot of the whole page. Prints one JSON line with what it found; exits 1 on a failure.
//
//   node tests/report/browser_check.mjs PAGE.html SCREENSHOT.png [PROFILE_DIR]
// The playwright-core package is looked up in $SINKLAB_NODE_MODULES, else scripts/npm/node_modules.
import { createRequire } from "node:module";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = process.env.SINKLAB_NODE_MODULES || path.join(here, "..", "..", "scripts", "npm", "node_modules");
const require = createRequire(path.join(modules, "noop.js"));
const { chromium } = require("playwright-core");

const [pagePath, screenshot, profileArg] = process.argv.slice(2);
if (!pagePath || !screenshot) {
  console.error("usage: node browser_check.mjs PAGE.html SCREENSHOT.png [PROFILE_DIR]");
  process.exit(2);
}
const pageUrl = pathToFileURL(path.resolve(pagePath)).href;
const profile = profileArg || mkdtempSync(path.join(tmpdir(), "sinklab-chromium-"));

const failures = [];
const found = { figures: 0, marks: [], tooltip: "", images: 0, broken: 0, console: [], requests: [] };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  offline: true,
  viewport: { width: 1280, height: 900 },
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => found.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => found.console.push(`pageerror: ${e.message}`));
  // Every request is seen here; only the page's own file may load (data: URIs never make a request).
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url === pageUrl) return route.continue();
    found.requests.push(url);
    return route.abort();
  });
  await page.goto(pageUrl, { waitUntil: "load", timeout: 60000 });
  await page.waitForSelector("#report-status[data-figures]", { state: "attached", timeout: 60000 });
  const status = await page.evaluate(() => {
    const s = document.getElementById("report-status").dataset;
    // Items in each view's scenegraph, walked from the root: a drawn chart has many.
    const count = (node) => {
      let n = 0;
      for (const item of node.items || []) {
        n += item.marktype && item.marktype !== "group" ? 1 : 0;
        if (item.items) n += count(item);
      }
      return n;
    };
    return {
      figures: +s.figures, failed: +s.figuresFailed, images: +s.images, broken: +s.broken,
      marks: (window.sinklabViews || []).map((v) => (v ? count(v.scenegraph().root) : 0)),
    };
  });
  found.figures = status.figures;
  found.marks = status.marks;
  found.images = status.images;
  found.broken = status.broken;
  if (status.failed > 0) failures.push(`${status.failed} of ${status.figures} figures failed to draw`);
  if (status.marks.length !== status.figures || status.marks.some((n) => n === 0))
    failures.push(`a figure has no marks: ${JSON.stringify(status.marks)}`);
  if (status.broken > 0) failures.push(`${status.broken} of ${status.images} images are broken`);

  // Hover the first point of a chart (a data mark, not a legend symbol): vega-tooltip shows its values.
  const point = page.locator(".vega-figure g.mark-symbol.role-mark path").first();
  if ((await point.count()) === 0) {
    failures.push("no point mark to hover");
  } else {
    await point.scrollIntoViewIfNeeded();
    await point.hover({ force: true });
    const tooltip = page.locator("#vg-tooltip-element.visible");
    try {
      await tooltip.waitFor({ state: "visible", timeout: 5000 });
      found.tooltip = (await tooltip.innerText()).replace(/\s+/g, " ").trim();
    } catch {
      failures.push("hovering a point showed no tooltip");
    }
    if (found.tooltip && !/\d/.test(found.tooltip)) failures.push(`the tooltip shows no number: ${found.tooltip}`);
    await page.mouse.move(0, 0);
  }
  await page.screenshot({ path: screenshot, fullPage: true });
} catch (error) {
  failures.push(`browser: ${error.message.split("\n")[0]}`);
} finally {
  await context.close();
}
if (found.console.length) failures.push(`console: ${found.console.join(" | ")}`);
if (found.requests.length) failures.push(`requests left the page: ${found.requests.join(", ")}`);
console.log(JSON.stringify({ ok: failures.length === 0, failures, ...found }));
process.exit(failures.length === 0 ? 0 : 1);
