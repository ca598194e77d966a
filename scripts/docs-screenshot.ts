/**
 * `npm run docs:screenshot`: regenerates docs/demo.png, the picture of the demo page in the
 * README. It plays the same scene as the browser test (test/helpers/demo-scene.ts) against a
 * fresh server in a temporary directory, in Debian's Chromium. The tests never write the file:
 * run this when the page changes, look at the picture, and commit it.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../test/helpers/browser.js';
import { addDemoAccounts, playDemoScene, screenshotWhenSettled } from '../test/helpers/demo-scene.js';
import { startServer } from '../test/helpers/server.js';

const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'demo.png');
const [browser, t] = await Promise.all([launchChromium(), startServer()]);
try {
  await addDemoAccounts(t);
  const scene = await playDemoScene(browser, t);
  mkdirSync(path.dirname(file), { recursive: true });
  await screenshotWhenSettled(scene.page, file);
  await scene.close();
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
} finally {
  await browser.close();
  await t.close();
}
