"""A real Chromium, driven by Playwright, against pytest-django's live server.

Playwright's own browser download is not used: the system Chromium is launched directly. Tests that
use these fixtures are skipped, saying why, on a machine without it.

`check_page` holds every page to the dashboard's layout and accessibility bar at a desktop and a phone
size: nothing scrolls sideways, and axe-core (installed by `make axe` into .node/, injected into the
page) finds no violation of serious or critical impact.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth.models import AbstractBaseUser

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# What tests.support.tenants.make_user gives every user.
PASSWORD = "correct-horse-battery"
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
AXE_SCRIPT = Path(__file__).resolve().parents[2] / ".node" / "node_modules" / "axe-core" / "axe.min.js"
# Impacts the dashboard must not have at all; moderate and minor ones are left to judgement.
BLOCKING_IMPACTS = ("serious", "critical")
# Where page screenshots are left for a person to look at (not committed).
SCREENSHOTS = Path(os.environ.get("DASHBOARD_SCREENSHOTS", "/tmp/kcp-dashboard-screenshots"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"real-browser tests need Chromium at {CHROMIUM}")
    from playwright.sync_api import expect, sync_playwright

    # Assertions retry until this long: pages poll every few seconds and the machine may be busy.
    expect.set_options(timeout=TIMEOUT_MS)

    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an asyncio loop running in this thread, and Django refuses ORM
        # calls from a thread with a running loop. The test code itself is plain synchronous code.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture
def page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(
        base_url=live_server.url,
        viewport=DESKTOP,
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    context.close()


def log_in(page: Page, user: AbstractBaseUser) -> None:
    """Sign in through the login form, as a person would."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def horizontal_overflow(page: Page) -> list[str]:
    """What makes the page wider than the window, as short descriptions; empty when it fits.

    Elements inside a region that scrolls on its own (overflow-x auto or scroll) do not count: a wide
    table in such a region scrolls there, not the page.
    """
    return page.evaluate(
        """() => {
          const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth <= width) return [];
          const scrollsInside = (el) => {
            for (let up = el.parentElement; up; up = up.parentElement) {
              const style = getComputedStyle(up);
              if (style.overflowX === "auto" || style.overflowX === "scroll" || style.overflowX === "hidden") return true;
            }
            return false;
          };
          const wide = [];
          document.querySelectorAll("body *").forEach((el) => {
            const box = el.getBoundingClientRect();
            if (box.right > width + 1 && !scrollsInside(el)) {
              wide.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
                (el.className && typeof el.className === "string" ? "." + el.className.split(" ").join(".") : "") +
                " right=" + Math.round(box.right));
            }
          });
          return wide.length ? wide.slice(0, 10) : ["document " + document.documentElement.scrollWidth + "px wide"];
        }"""
    )


def axe_violations(page: Page, impacts: tuple[str, ...] = BLOCKING_IMPACTS) -> list[dict[str, Any]]:
    """axe-core's violations of these impacts on the page as it is now, each with the nodes it found."""
    if not AXE_SCRIPT.exists():
        pytest.fail(f"axe-core is not installed at {AXE_SCRIPT}: run `make axe`")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE_SCRIPT))
    result = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [node["target"] for node in violation["nodes"]][:5],
        }
        for violation in result
        if violation["impact"] in impacts
    ]


def check_page(page: Page, name: str | None = None) -> None:
    """The open page at the desktop size, then at the phone size (and back): it fits the window's
    width and axe finds nothing serious. With `name`, a screenshot of each size is saved."""
    problems: list[str] = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        # Layout settles on the next frame; wait for it rather than for a fixed time.
        page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
        if wide := horizontal_overflow(page):
            problems.append(f"{label}: the page scrolls sideways: {wide}")
        if violations := axe_violations(page):
            problems.append(f"{label}: axe violations: {violations}")
        if name:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert not problems, f"{page.url}:\n" + "\n".join(problems)
