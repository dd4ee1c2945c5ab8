from workshop_lib.checks.scaling import q2


async def relay(redis, stream, after, deliver):
    """Deliver the text of every entry of `stream` after id `after`, in order, each once,
    for ever: the one reader a server process runs for all its members."""
    last = after
    while True:
        reply = await redis.xread({stream: last}, block=1000)  # waits up to 1 s for news
        for _stream, entries in reply:
            for entry_id, fields in entries:
                deliver(fields["text"])
                last = entry_id  # the next read asks for what comes after this one


q2.check(relay)
