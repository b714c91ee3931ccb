"""DynamoDB requests per operation: quoted from tests/test_request_budget.py,
which asserts them (`make test`); the bench does not count them again."""

import inspect

from bench import common


def main() -> None:
    common.environment()
    from tests import test_request_budget as budgets

    tests = [(name, (inspect.getdoc(test) or "").split("\n")[0]) for name, test in vars(budgets).items()
             if name.startswith("test_") and callable(test)]
    common.write_result({
        "operations": {name: expected for name, (_, _, expected) in budgets.OPERATIONS.items()},
        "tests": [{"name": name, "says": doc or name.removeprefix("test_").replace("_", " ")} for name, doc in tests],
    })


if __name__ == "__main__":
    main()
