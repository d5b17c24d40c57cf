"""Benchmark: how many learners one machine holds on the class hub (``make hub``).

    sudo python benchmarks/classroom.py --learners 5            # 5 learners, 120 s of slider moves
    sudo python benchmarks/classroom.py --learners 20 --seconds 300

N learners log in through the hub's login form, start their servers at once (a spawn the hub refuses
with 429, over its limit of servers starting at once, is asked again after the wait it names, and
counted), open notebook 02 (their student copy) in a kernel and run its cells up to the adaptation
widget in quick mode (the models train for seconds instead of loading the checkpoints; each move
costs the same: two 1-40-40-1 MLPs fine-tuned step by step, one figure). Then each learner moves the
widget's amplitude slider every 5 s, as the widget's own ``observe`` callback does in the browser,
timed from sending the change over the kernel websocket to the kernel's reply (the callback has
drawn the figure; the browser's PNG decode is not included, see widget_latency.py).

With ``--browser`` one more learner uses a real headless Chromium, driven by Playwright as the browser
tests do (tests/browser/drive.py): it logs in through the hub's login page, which spawns its server,
opens notebook 02 in JupyterLab (asking again, as a learner would, when the hub refuses a spawn
because too many are under way), runs all its cells from the Run menu and presses the k_shot slider's
arrow keys every period, each change timed from the key press to the redrawn plot loaded in the page
(the browser's whole path: websocket, callback, PNG, decode).

Reports spawn seconds, setup seconds, p50/p95 slider-to-result latency, failed spawns, failed moves,
kernel deaths (a kernel that stopped answering or is gone) and memory per learner (unique set size
of the learner's processes: server + kernel). Needs root, like the hub. The last line printed is
``RESULT learners=... p95_s=... failed_spawns=... kernel_deaths=...`` (and ``browser_p95_s=...``).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import random
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parents[1]
nan = float("nan")
NOTEBOOK = "02_maml_derivation.ipynb"
PASSWORD = "classroom-benchmark"
spec = importlib.util.spec_from_file_location("metakit_hub_client", REPO / "hub" / "client.py")
client = importlib.util.module_from_spec(spec)
spec.loader.exec_module(client)
sys.path.insert(0, str(REPO / "tests" / "browser"))
import drive  # noqa: E402  (the browser suite's helpers)


def setup_cells(nb) -> list[str]:
    """The code cells up to and including the one that builds the adaptation widget."""
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    last = next(i for i, s in enumerate(cells) if "widgets.Explorer(adaptation_figure" in s)
    return cells[:last + 1]


def learner_run(learner, seconds: float, period: float, record: dict):
    try:
        record["spawn_s"] = learner.spawn(timeout=600)
    except Exception as e:  # a failed spawn is a figure, not a crash of the benchmark
        record["spawn_error"] = str(e)[:300]
        return
    finally:
        record["spawn_retries"] = learner.spawn_retries
    nb = nbformat.from_dict(learner.server_api("GET", f"/contents/{NOTEBOOK}").json()["content"])
    kernel = learner.kernel(NOTEBOOK)
    record["kernel"] = kernel.id
    t0 = time.monotonic()
    for i, code in enumerate(setup_cells(nb)):
        try:
            out = kernel.execute(code, timeout=900)
        except Exception as e:  # the kernel or its websocket went away: a failure to count, not a crash
            record["kernel_lost"] = f"setup cell {i}: {type(e).__name__}: {str(e)[:200]}"
            return
        if out["status"] != "ok":
            record["setup_error"] = f"cell {i}: {out['ename']}: {out['evalue']}"
            return
    record["setup_s"] = time.monotonic() - t0
    rng = random.Random(learner.name)
    time.sleep(rng.uniform(0, period))  # each learner starts moving after their own setup, not in lockstep
    end = time.monotonic() + seconds
    amplitude = 3.0
    while time.monotonic() < end:
        tick = time.monotonic()
        amplitude = round(rng.choice([a for a in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5) if a != amplitude]), 1)
        try:
            out = kernel.execute(f'explorer.controls["amplitude"].value = {amplitude}', timeout=120)
            if out["status"] == "ok":
                record.setdefault("latency_s", []).append(out["seconds"])
            else:
                record["failed_moves"] = record.get("failed_moves", 0) + 1
        except Exception as e:
            record["kernel_lost"] = str(e)[:200]
            return
        time.sleep(max(0.0, period - (time.monotonic() - tick)))
    kernel.close()


def browser_run(hub_url: str, name: str, seconds: float, period: float, record: dict):
    """One learner in headless Chromium: the login page, JupyterLab, Run All, then the k_shot slider."""
    chromium = drive.find_chromium()
    if chromium is None:
        record["spawn_error"] = drive.INSTALL_HINT
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = drive.launch_browser(p, chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(120_000)
            t0 = time.monotonic()
            page.goto(f"{hub_url}/hub/login")
            page.fill("#username_input", name)
            page.fill("#password_input", PASSWORD)
            page.click("#login_submit")  # the hub spawns the server and sends the browser on to it
            while True:  # a refused spawn (429: too many starting at once) is asked again, as a learner would
                try:
                    page.wait_for_url(f"**/user/{name}/**", timeout=20_000)
                    break
                except Exception:
                    if time.monotonic() - t0 > 600:
                        raise
                    if "/hub/spawn-pending/" not in page.url:  # pending: its own page moves on when ready
                        record["spawn_retries"] = record.get("spawn_retries", 0) + 1
                        page.goto(f"{hub_url}/hub/spawn")
            page.goto(f"{hub_url}/user/{name}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded")
            page.locator(f"{drive.CURRENT_NOTEBOOK} .jp-Cell").first.wait_for(timeout=600_000)
            record["spawn_s"] = time.monotonic() - t0
            t0 = time.monotonic()
            page.wait_for_timeout(3000)  # the kernel's start
            drive.menu(page, "Run", "runmenu:run-all")
            page.wait_for_function(drive.RAN_ALL, timeout=900_000, polling=1000)
            explorer = page.locator(f"{drive.CURRENT_NOTEBOOK} {drive.EXPLORER}").first
            explorer.locator(":scope > img.widget-image").wait_for(timeout=300_000)
            if errors := drive.errors_shown(page, drive.CURRENT_NOTEBOOK):
                record["setup_error"] = f"the notebook shows an error: {errors[0][:200]}"
                return
            record["setup_s"] = time.monotonic() - t0
            explorer.scroll_into_view_if_needed()
            end, keys = time.monotonic() + seconds, ["ArrowRight", "ArrowLeft"]
            while time.monotonic() < end:
                tick = time.monotonic()
                try:
                    record.setdefault("latency_s", []).extend(
                        drive.slider_latency(explorer, "k_shot", keys=keys[:1], repeats=1))
                except Exception as e:  # the plot did not change within 30 s
                    record["failed_moves"] = record.get("failed_moves", 0) + 1
                    record["move_error"] = str(e)[:200]
                keys.reverse()
                time.sleep(max(0.0, period - (time.monotonic() - tick)))
        except Exception as e:
            record["spawn_error" if "spawn_s" not in record else "setup_error"] = f"{type(e).__name__}: {str(e)[:300]}"
        finally:
            browser.close()


def memory_mb(name: str) -> float:
    uid = pwd.getpwnam(name).pw_uid
    total = 0
    for p in psutil.process_iter(["uids"]):
        if p.info["uids"] and p.info["uids"].real == uid:
            try:
                total += p.memory_full_info().uss
            except psutil.Error:
                pass
    return total / 2**20


def kernel_alive(learner, kernel_id: str | None) -> bool:
    if kernel_id is None:
        return True  # it never started: counted as a failed spawn or setup
    r = learner.server_api("GET", f"/kernels/{kernel_id}")
    return r.status_code == 200 and r.json().get("execution_state") not in ("dead", "restarting")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=120, help="how long the slider moves go on")
    parser.add_argument("--period", type=float, default=5, help="seconds between one learner's moves")
    parser.add_argument("--browser", action="store_true", help="one more learner in a real Chromium")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # a timeout's kill still stops the hub, deletes the accounts

    tag = os.getpid() % 10000
    names = [f"mkc{tag}n{i}" for i in range(args.learners)]
    in_browser = f"mkc{tag}b" if args.browser else None
    hub = client.Hub(names + ([in_browser] if in_browser else []), PASSWORD,
                     env={"METAKIT_QUICK": "1", "MPLBACKEND": "agg"})
    records = {n: {} for n in names}
    seen = {}  # the browser learner's record
    load = []
    stop = threading.Event()
    try:
        hub.start()
        learners = [client.Learner(hub, n) for n in names]
        for learner in learners:
            assert learner.login(PASSWORD), learner.name

        def sample_load():
            while not stop.wait(5):
                load.append(os.getloadavg()[0])

        threading.Thread(target=sample_load, daemon=True).start()
        t0 = time.monotonic()
        with ThreadPoolExecutor(len(learners) + 1) as pool:
            futures = [pool.submit(learner_run, ln, args.seconds, args.period, records[ln.name])
                       for ln in learners]
            if in_browser:  # its moves start after its own Run All, like the others' after their setup
                futures.append(pool.submit(browser_run, hub.url, in_browser, args.seconds, args.period, seen))
            for f in futures:
                f.result()
        memory = [memory_mb(n) for n in names if "spawn_s" in records[n]]
        browser_memory = memory_mb(in_browser) if in_browser and "spawn_s" in seen else nan
        deaths = sum(1 for ln in learners if "kernel_lost" in records[ln.name]
                     or not kernel_alive(ln, records[ln.name].get("kernel")))
        wall = time.monotonic() - t0
    finally:
        stop.set()
        hub.stop()

    spawns = [r["spawn_s"] for r in records.values() if "spawn_s" in r]
    setups = [r["setup_s"] for r in records.values() if "setup_s" in r]
    latency = sorted(x for r in records.values() for x in r.get("latency_s", []))
    failed_spawns = sum(1 for r in records.values() if "spawn_error" in r)
    failed_setups = sum(1 for r in records.values() if "setup_error" in r)
    failed_moves = sum(r.get("failed_moves", 0) for r in records.values())

    def q(xs, p):
        return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else nan

    def med(xs):
        return statistics.median(xs) if xs else nan

    for n, r in records.items():
        problems = {k: v for k, v in r.items() if k.endswith("error") or k == "kernel_lost"}
        if problems:
            print(n, problems)
    print(f"learners {args.learners} on {os.cpu_count()} cores; run {wall:.0f} s; load average during it "
          f"(1 min) mean {statistics.fmean(load) if load else nan:.1f}, max {max(load, default=nan):.1f}")
    retries = sum(r.get("spawn_retries", 0) for r in records.values())
    print(f"spawn s: median {med(spawns):.1f}, max {max(spawns, default=nan):.1f}; spawns refused (429) and "
          f"asked again: {retries}")
    print(f"setup (notebook 02 up to the widget, quick) s: median {med(setups):.1f}, "
          f"max {max(setups, default=nan):.1f}")
    print(f"slider moves {len(latency)}: p50 {q(latency, 0.5):.3f} s, p95 {q(latency, 0.95):.3f} s, "
          f"max {max(latency, default=nan):.3f} s; failed moves {failed_moves}, failed setups {failed_setups}")
    print(f"memory per learner (USS, server + kernel) MiB: median {med(memory):.0f}, "
          f"max {max(memory, default=nan):.0f}")
    browser = ""
    if in_browser:
        problems = {k: v for k, v in seen.items() if k.endswith("error")}
        seen_latency = sorted(seen.get("latency_s", []))
        print(f"Chromium learner: spawn (login to notebook shown) {seen.get('spawn_s', nan):.1f} s, Run All "
              f"(quick) {seen.get('setup_s', nan):.1f} s; slider to redrawn plot, {len(seen_latency)} changes: "
              f"p50 {q(seen_latency, 0.5):.3f} s, p95 {q(seen_latency, 0.95):.3f} s, "
              f"max {max(seen_latency, default=nan):.3f} s; failed changes {seen.get('failed_moves', 0)}; "
              f"server + kernel USS {browser_memory:.0f} MiB; spawn asked again {seen.get('spawn_retries', 0)} times"
              + (f"; {problems}" if problems else ""))
        browser = f" browser_p95_s={q(seen_latency, 0.95):.3f} browser_failed={int(bool(problems))}"
    print(f"RESULT learners={args.learners} p50_s={q(latency, 0.5):.3f} p95_s={q(latency, 0.95):.3f} "
          f"failed_spawns={failed_spawns} kernel_deaths={deaths} failed_moves={failed_moves} "
          f"spawn_max_s={max(spawns, default=nan):.1f} mem_mib={med(memory):.0f}{browser}")

if __name__ == "__main__":
    main()
