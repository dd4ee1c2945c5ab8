from workshop_lib.checks.realtime import q2


def reverse_responder(text):
    """Answer with the words of `text` in reverse order, one word per delta."""
    for word in reversed(text.split()):
        yield word + " "


q2.check(reverse_responder)
