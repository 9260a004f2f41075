"""The smallest useful workflow: one inline step that builds a greeting.

{"name": "Ada"} → {"greeting": "Hello, Ada!"}
"""

import weft


def hello(ctx: weft.Context, input: dict) -> dict:
    greeting = ctx.step("greet", lambda: f"Hello, {input['name']}!")
    ctx.info(greeting)
    return {"greeting": greeting}


WitWorld = weft.workflow(hello)
