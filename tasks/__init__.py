"""Built-in tasks: every module here registers itself with `@register_task`.

Add a task by adding one module; `suite.taskapi.registry.load_tasks` imports them all.
"""
