"""A multi-agent env whose agents have no spaces (a bad input for tests/test_multiagent.py)."""


class NoSpaces:
    possible_agents = ["a_0", "a_1"]

    def __init__(self, config=None):
        pass

    def reset(self):
        return {"a_0": 0, "a_1": 0}

    def step(self, action_dict):
        return {}, {}, {"__all__": True}, {}
