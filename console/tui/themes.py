"""The console's themes: config name -> (Textual colour theme, our .tcss
file).  The .tcss files ship inside the package (console/themes), so an
installed wheel finds them where a source checkout does."""

from __future__ import annotations

from importlib.resources import files

THEMES_DIR = files("console") / "themes"
THEMES = {
    "dark": ("textual-dark", "dark.tcss"),
    "light": ("textual-light", "light.tcss"),
    "solarized": ("solarized-dark", "solarized.tcss"),
}
