"""``kubectl imagetrigger``: a kubectl/oc plugin that shows what the operator does and why.

Thin I/O around the operator's own planner, with the user's credentials::

    cluster.py   the only I/O: credentials, the LISTs that fill the indexes, suspend/resume
    explain.py   pure: rows, explanations and history from plan_trigger / plan_annotated
    render.py    pure: tables, ages, JSON and YAML
    cli.py       arguments, exit codes and one-line errors
"""
