"""{{name}}: a Continuum command plugin in Python (componentize-py).

Build with `continuum plugin build`. The generated `wit_world` package holds the types of the
world in wit/; each exported function is a method of `WitWorld`. Raise `Err(value)` to return
the error case of a `result`. `continuum_sdk` (beside this file) wraps the host interfaces.
"""

import wit_world
from componentize_py_types import Err
from wit_world import Style

import continuum_sdk as sdk


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str, style: Style | None) -> str:
        if not name.strip():
            raise Err("name is empty")
        sdk.log("info", f"greeting {name}")
        text = f"Hello, {name}!"
        return text.upper() if style == Style.LOUD else text
