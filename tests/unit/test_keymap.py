"""The README's keyboard map is the one generated from the bindings, and no
key means two things across the screens."""

from pathlib import Path

from console.tui.keymap import END, START, markdown, rows

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_keyboard_map_matches_the_bindings():
    text = README.read_text()
    block = text[text.index(START): text.index(END) + len(END)]
    assert block == markdown(), "run: python -m console.tui.keymap, and paste it into README.md"


def test_one_key_one_meaning():
    """A key names one action everywhere; the families below are one meaning
    each on purpose: p pauses (the task list toggles), r reads again, + / -
    more / less of the screen's rate knob, q and Esc leave (the dashboard
    quits, a dialog cancels)."""
    meanings: dict[str, set[str]] = {}
    for keys, _where, desc in rows():
        for k in keys.split(", "):
            meanings.setdefault(k, set()).add(desc)
    clashes = {k: v for k, v in meanings.items() if len(v) > 1}
    assert clashes == {"p": {"Pause", "Pause/resume"}, "r": {"Refresh", "Reload"},
                       "+": {"Refresh faster", "Chunk size x2"}, "-": {"Refresh slower", "Chunk size /2"},
                       "q": {"Quit", "Back"},
                       "Esc": {"Back", "cancel (a dangerous action needs its target's name typed)"}}, clashes
