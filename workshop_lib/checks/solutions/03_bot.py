import time

from workshop_lib.checks.chat import q1


def reply(text, sender, users):
    """What the bot says to `text` from `sender`; None to stay quiet."""
    if text == "!hello":
        return f"hello, {sender}!"
    if text == "!users":
        return ", ".join(users)
    if text == "!time":
        return time.strftime("%H:%M:%S")
    return None


q1.check(reply)
