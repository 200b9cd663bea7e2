"""Drives the node's web console in headless Chromium (Debian's `chromium`) with Playwright.

Usage: console_browser.py <phase> <json arguments>. Each phase does what a person would in
the console and prints one JSON report of what it saw; the Rust test
(`tests/tests/suite/console.rs`) checks the report against the CLI and the node.

- `owner`: log in with a one-time link, search, fill and run `text/stats`, fill the typezoo
  form (client-side checks, then a run, then a server-side error placed at its field), stream
  `llm/generate` when a model is there, run a job, screenshot every page at 1280x800 and the
  catalog at phone width, log out.
- `tampered`: log in with a new link and read the event log's verification.
- `client`: log in with an API key and read what the console offers.
- `reuse`: open an already used login link.
"""

import json
import re
import sys
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
# What the event log page says once its verification has come back.
VERIFIED = re.compile(r"^(Verified:|Does not verify)")
# Markup in a command's value: the console must show it as text, never run it.
XSS = '<img src=x onerror="window.__xss=1">zoo'



def shot(page, args, name, at=None):
    """A screenshot of the page (from its top, or scrolled to `at`), under the test's screenshot folder."""
    folder = Path(args["screenshots"])
    folder.mkdir(parents=True, exist_ok=True)
    if at:
        page.locator(at).scroll_into_view_if_needed()
    else:
        page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(folder / f"{name}.png"), full_page=False)


def field(page, path):
    """The field (or field group) at a params path, e.g. `params.origin.x`."""
    return page.locator(f'[data-path="{path}"]').first


def fill(page, path, label, value):
    """Types `value` into the input labelled `label` inside the field at `path`."""
    field(page, path).get_by_label(label, exact=True).fill(str(value))


def login(page, args, url):
    page.goto(url)
    expect(page.locator("#nav a").first).to_be_visible()


def owner(page, args):
    report = {}
    login(page, args, args["link"])
    report["who"] = page.locator("#who").inner_text()
    report["nav"] = page.locator("#nav a").all_inner_texts()
    expect(page.locator("#catalog li").first).to_be_visible()
    shot(page, args, "commands")

    # Search by meaning, then open text/stats from the results.
    page.get_by_label("Search commands by what they do").fill("count words")
    expect(page.locator("#ranking")).to_contain_text("Ranked")
    expect(page.locator("#catalog li .muted").first).to_be_visible()
    report["search"] = page.locator("#catalog li a").all_inner_texts()
    report["ranking"] = page.locator("#ranking").inner_text()
    page.locator("#catalog a", has_text="text/stats").first.click()
    expect(page.locator("h1")).to_have_text("text/stats")
    fill(page, "params.text", "text", "Hello world. Hello again!")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-value")).to_be_visible()
    report["stats"] = json.loads(page.locator("#result-value").get_attribute("data-json"))
    shot(page, args, "command-text-stats", at="#result-value")

    # Run it as a job: the job page follows it to its end.
    page.get_by_role("button", name="Run as a job").click()
    expect(page.locator("#job-state")).to_contain_text("succeeded", timeout=15000)
    report["job_result"] = json.loads(page.locator("#result-value").get_attribute("data-json"))
    page.goto(args["http"] + "/#/jobs")
    expect(page.locator("#jobs tbody tr").first).to_be_visible()
    report["jobs_listed"] = page.locator("#jobs tbody tr").count()
    shot(page, args, "jobs")

    # The typezoo form: every WIT shape.
    page.goto(args["http"] + "/#/command/typezoo/echo")
    expect(page.locator("h1")).to_have_text("typezoo/echo")
    field(page, "params.flag").get_by_label("flag").check()
    fill(page, "params.tiny", "tiny", 300)  # out of s8's range: refused before sending
    page.get_by_role("button", name="Run", exact=True).click()
    report["tiny_error"] = field(page, "params.tiny").locator(".field-error").inner_text()
    report["sent_before_fix"] = page.locator("#result-value").count()
    fill(page, "params.tiny", "tiny", -5)
    fill(page, "params.byte", "byte", 200)
    fill(page, "params.short", "short", -300)
    fill(page, "params.ushort", "ushort", 60000)
    fill(page, "params.int", "int", -70000)
    fill(page, "params.uint", "uint", 4000000000)
    fill(page, "params.long", "long", "-9007199254740993")
    fill(page, "params.ulong", "ulong", "18446744073709551615")
    fill(page, "params.single", "single", 1.5)
    fill(page, "params.double", "double", -2.25)
    fill(page, "params.letter", "letter", "é")
    fill(page, "params.name", "name", XSS)
    field(page, "params.data").locator("input[type=file]").set_input_files(
        files=[{"name": "bytes.bin", "mimeType": "application/octet-stream", "buffer": b"hi\x00"}])
    expect(field(page, "params.data")).to_contain_text("3 bytes")
    tags = field(page, "params.tags")
    for _ in range(3):
        tags.get_by_role("button", name="Add tags item").click()
    fill(page, "params.tags[0]", "tags item 1", "drop")
    fill(page, "params.tags[1]", "tags item 2", "a")
    fill(page, "params.tags[2]", "tags item 3", "b")
    tags.get_by_role("button", name="Remove tags item 1").click()
    page.get_by_label("Set maybe").check()
    fill(page, "params.maybe", "maybe", 7)
    fill(page, "params.origin.x", "x", 1)
    fill(page, "params.origin.y", "y", -2)
    field(page, "params.paint").get_by_label("paint").select_option("green")
    field(page, "params.mode").get_by_label("read").check()
    field(page, "params.mode").get_by_label("exec").check()
    field(page, "params.form").get_by_label("form: case").select_option("rect")
    fill(page, "params.form.rect.x", "x", 3)
    fill(page, "params.form.rect.y", "y", 4)
    fill(page, "params.pair[0]", "pair 1", "p")
    fill(page, "params.pair[1]", "pair 2", 9)
    field(page, "params.outcome").get_by_label("outcome: case").select_option("err")
    fill(page, "params.outcome.err", "err value", "bad")
    shot(page, args, "command-typezoo-form")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-value")).to_be_visible()
    report["echo"] = json.loads(page.locator("#result-value").get_attribute("data-json"))
    report["echo_long_text"] = page.locator("#result-value").inner_text()
    report["injected"] = page.evaluate("[document.querySelectorAll('#result img').length, window.__xss || 0]")
    page.locator("#tab-json").click()
    report["echo_params"] = page.locator("#params-json").input_value()

    # A value only the node refuses: sent as JSON, its error lands at the field it names.
    bad = json.loads(report["echo_params"])
    bad["tags"] = ["a", 5]
    page.locator("#params-json").fill(json.dumps(bad))
    page.get_by_role("button", name="Run", exact=True).click()
    expect(field(page, "params.tags[1]").locator(".field-error")).not_to_be_empty()
    report["server_error_field"] = field(page, "params.tags[1]").locator(".field-error").inner_text()
    report["form_shown_again"] = page.locator("#form-fields").is_visible()

    # A huge result is cut in the page, with the whole of it as a download.
    page.goto(args["http"] + "/#/command/text/convert-case")
    fill(page, "params.text", "text", "word " * 50000)
    field(page, "params.to").get_by_label("to").select_option("upper")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-value .warn")).to_be_visible(timeout=30000)
    report["huge_result"] = page.locator("#result-value .warn").inner_text()
    report["huge_shown"] = len(page.locator("#result-value pre").inner_text())

    # A command that fails shows its error value.
    page.goto(args["http"] + "/#/command/typezoo/divide")
    fill(page, "params.a", "a", 1)
    fill(page, "params.b", "b", 0)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#call-error")).to_be_visible()
    report["divide_error"] = page.locator("#call-error").inner_text()
    report["divide_status"] = page.locator("#run-status").inner_text()

    # Tokens arrive before the end.
    if args.get("llm"):
        page.goto(args["http"] + "/#/command/llm/generate")
        fill(page, "params.prompt", "prompt", "Write a short poem about the sea.")
        page.get_by_label("Set max-tokens").check()
        fill(page, "params.max-tokens", "max-tokens", 64)
        # Record in the page when the first token and the result appear (polling could miss it).
        page.evaluate("""() => {
            window.__times = {};
            const t0 = performance.now();
            const live = document.getElementById('live'), result = document.getElementById('result');
            new MutationObserver(() => { if (live.textContent && !window.__times.token) {
                window.__times.token = performance.now() - t0; window.__times.result_then = result.childElementCount; } })
                .observe(live, { childList: true, characterData: true, subtree: true });
            new MutationObserver(() => { if (result.childElementCount && !window.__times.result) window.__times.result = performance.now() - t0; })
                .observe(result, { childList: true });
        }""")
        page.get_by_role("button", name="Run", exact=True).click()
        expect(page.locator("#result-value")).to_be_visible(timeout=120000)
        times = page.evaluate("window.__times")
        report["first_token_s"] = times["token"] / 1000
        report["generation_s"] = times["result"] / 1000
        report["result_when_first_token"] = times["result_then"]
        report["generated"] = json.loads(page.locator("#result-value").get_attribute("data-json"))
        report["live_at_end"] = page.locator("#live").inner_text()
        shot(page, args, "command-llm-generate", at="#result-value")

    # Grants and API keys: issue, make a key for it, revoke the key (confirming).
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(args["http"] + "/#/grants")
    page.get_by_label("Grantee public key", exact=True).fill(args["grantee"])
    page.get_by_label("Capabilities", exact=True).fill("text/stats")
    page.get_by_role("button", name="Issue the grant").click()
    expect(page.locator("#secret")).to_have_value(re.compile("^cgt1"))
    report["grant_token"] = page.locator("#secret").input_value()
    expect(page.locator("#grants tbody tr").first).to_be_visible()
    page.get_by_label("For a grant token (or a bare public key: public commands only)").fill(report["grant_token"])
    page.get_by_label("Label", exact=True).fill("from-the-console")
    page.get_by_role("button", name="Create the API key").click()
    expect(page.locator("#secret")).to_have_value(re.compile("^ck_"))
    report["api_key"] = page.locator("#secret").input_value()
    expect(page.locator("#apikeys tbody tr", has_text="from-the-console")).to_be_visible()
    shot(page, args, "grants")
    page.locator("#apikeys tbody tr", has_text="from-the-console").get_by_role("button").click()
    expect(page.locator("#apikeys tbody tr", has_text="from-the-console")).to_have_count(0)

    # Usage: real charts from the log.
    page.goto(args["http"] + "/#/usage")
    expect(page.locator("svg.chart").first).to_be_visible()
    report["calls_chart"] = page.locator("svg.chart").first.get_attribute("aria-label")
    report["chart_bars"] = page.locator("svg.chart").first.locator("rect").count()
    shot(page, args, "usage")

    # Plugins: an uploaded alloy is verified step by step; a tampered one is refused at its digest.
    page.goto(args["http"] + "/#/plugins")
    page.get_by_label("Alloy file").set_input_files(args["tampered"])
    page.get_by_label("Install even if its publisher is not in the trust store").check()
    page.get_by_label("Approve every host capability it requests").check()
    page.get_by_role("button", name="Verify and install").click()
    expect(page.locator("#install-outcome")).to_contain_text("Refused", timeout=30000)
    report["tampered_steps"] = page.locator("#install-steps li strong").all_inner_texts()
    report["tampered_outcome"] = page.locator("#install-outcome").inner_text()
    page.get_by_label("Alloy file").set_input_files(args["alloy"])
    page.get_by_role("button", name="Verify and install").click()
    expect(page.locator("#install-outcome")).to_contain_text("Installed", timeout=60000)
    report["install_steps"] = page.locator("#install-steps li strong").all_inner_texts()
    expect(page.locator('[data-plugin="json"]')).to_be_visible()
    shot(page, args, "plugins-install")

    # Plugins: withdraw a capability and approve it again, each confirmed.
    kv = page.locator('[data-plugin="kv"]')
    expect(kv.locator("table.caps")).to_contain_text("host:store")
    report["kv_before"] = kv.locator("table.caps tbody tr", has_text="host:store").locator("td").nth(1).inner_text()
    kv.get_by_role("button", name="Withdraw host:store for kv").click()
    expect(page.locator('[data-plugin="kv"] table.caps tbody tr', has_text="host:store").locator("td").nth(1)).to_have_text("not approved")
    page.locator('[data-plugin="kv"]').get_by_role("button", name="Approve host:store for kv").click()
    expect(page.locator('[data-plugin="kv"] table.caps tbody tr', has_text="host:store").locator("td").nth(1)).to_have_text("approved")
    report["kv_publisher"] = page.locator('[data-plugin="kv"] p').first.inner_text()

    for name in ["events", "grid", "api"]:
        page.goto(args["http"] + f"/#/{name}")
        expect(page.locator("h1")).not_to_have_text("Log in")
        page.wait_for_timeout(600)
        shot(page, args, name)
    page.goto(args["http"] + "/#/events")
    expect(page.locator("#verify")).to_have_text(VERIFIED, timeout=10000)
    report["verify"] = page.locator("#verify").inner_text()
    page.locator("#f-kind").fill("call.completed")
    page.wait_for_timeout(300)
    report["filtered_kinds"] = sorted(set(page.locator("#events tbody tr td:nth-child(2)").all_inner_texts()))
    page.goto(args["http"] + "/#/api")
    expect(page.locator("#operations details").first).to_be_visible()
    report["api_operations"] = page.locator("#operations summary code").all_inner_texts()

    # Phone width: the catalog still reads.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(args["http"] + "/#/commands")
    expect(page.locator("#catalog li").first).to_be_visible()
    report["phone_overflow"] = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    shot(page, args, "commands-phone")
    page.set_viewport_size({"width": 1280, "height": 800})

    # Keyboard: Tab from the top reaches the skip link, then the pages.
    page.goto(args["http"] + "/#/commands")
    page.reload()
    expect(page.locator("#catalog li").first).to_be_visible()
    page.keyboard.press("Tab")
    report["first_tab"] = page.evaluate("document.activeElement.textContent")

    # A fragment naming a path outside its kind reaches no API route.
    page.goto(args["http"] + "/#/job/../peers/abc")
    expect(page.locator("h1")).to_have_text("Not found")
    report["traversal"] = page.locator("main p").first.inner_text()

    page.get_by_role("button", name="Log out").click()
    expect(page.locator("h1")).to_have_text("Log in")
    report["after_logout"] = page.evaluate("fetch('/v1/commands').then(r => r.status)")
    shot(page, args, "login")
    return report


def tampered(page, args):
    login(page, args, args["link"])
    page.goto(args["http"] + "/#/events")
    expect(page.locator("#verify")).to_have_text(VERIFIED, timeout=10000)
    shot(page, args, "events-tampered")
    return {"verify": page.locator("#verify").inner_text()}


def client(page, args):
    page.goto(args["http"] + "/")
    expect(page.locator("h1")).to_have_text("Log in")
    page.get_by_label("Or log in with an API key").fill(args["api_key"])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#catalog li").first).to_be_visible()
    page.wait_for_timeout(300)
    report = {
        "who": page.locator("#who").inner_text(),
        "nav": page.locator("#nav a").all_inner_texts(),
        "catalog": page.locator("#catalog li a").all_inner_texts(),
    }
    page.goto(args["http"] + "/#/events")
    report["events_page"] = page.locator("h1").inner_text()
    page.goto(args["http"] + f"/#/command/{args['forbidden']}")
    expect(page.locator(".error").first).to_be_visible()
    report["forbidden"] = page.locator(".error").first.inner_text()
    shot(page, args, "client-commands")
    return report


def reuse(page, args):
    response = page.goto(args["link"])
    return {"status": response.status, "text": page.locator("body").inner_text()}


def main():
    phase, args = sys.argv[1], json.loads(sys.argv[2])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(15000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        report = {"owner": owner, "tampered": tampered, "client": client, "reuse": reuse}[phase](page, args)
        report["page_errors"] = errors
        browser.close()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
