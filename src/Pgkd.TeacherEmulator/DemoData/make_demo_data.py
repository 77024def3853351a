#!/usr/bin/env python3
"""Writes the project's demo dataset: customer messages to an online shop's support desk, six intents with
confusable pairs (Refund vs Return, Damaged item vs Wrong item, Late delivery vs Cancel order). Every sentence
is original, written for PgkdAspire from hand-made templates and slot fillers (no corpus, no third-party
text), with a fixed seed. The split is made so that the demo shows what PGKD is about: the seed training set
is small (4 a class) and covers only some of each class's phrasings, so the round-0 student is visibly wrong
on validation, and the pool (what the emulated teacher answers from) covers all of them, so the teacher's
samples aimed at the hard negatives lift accuracy round after round.

Run it from this folder; the output is committed, so nothing runs it at build time. The 4-topic news set
the demo used before lives in news/ (the emulator's unit tests use it)."""
import json, random, re

rng = random.Random(20261129)

ITEMS = ["the blue kettle", "my running shoes", "the desk lamp", "a winter coat", "the phone case", "the coffee grinder",
         "two bath towels", "the bike helmet", "a pair of headphones", "the garden hose", "the wool scarf",
         "the baby monitor", "a set of saucepans", "the yoga mat", "the electric toothbrush", "the bookshelf",
         "the rain jacket", "a box of candles", "the office chair", "the travel mug"]
ORDER = ["order 48213", "order 51907", "my order from Monday", "order 60442", "my last order", "order 39125",
         "the order I placed online", "order 77310"]
TIME = ["two weeks ago", "last Tuesday", "on the 3rd", "ten days ago", "yesterday", "at the weekend", "a month ago",
        "on Friday"]
AMOUNT = ["$24.99", "$89", "$12.50", "$140", "$35", "$61.20"]
HELLO = ["", "", "", "Hi, ", "Hello, ", "Good morning, ", "Quick question: ", "Hi there, "]
BYE = ["", "", "", " Thanks.", " Thank you!", " Please help.", " Cheers, Sam", " Kind regards."]

CLASSES = {
    "Refund": [
        "I sent {item} back {time} and still haven't seen the money on my card.",
        "when will the refund for {order} reach my account?",
        "you said I'd get my money back for {item}, but nothing has arrived yet.",
        "please refund the {amount} I paid for {item}.",
        "the refund for {item} was {amount} short of what I paid.",
        "I was charged twice for {order}; I want the second payment paid back.",
        "my return of {item} was received {time}, so how long until the credit shows on my card?",
        "the price of {item} dropped the day after I bought it. Can I get the difference back?",
        "I cancelled {order} {time} but the payment of {amount} hasn't been reversed.",
        "can the refund for {item} go to a different card? The old one is closed.",
        "it's been ten working days since you approved my refund for {item}.",
        "I'd rather have store credit than cash back for {item}. Can you change my refund?",
        "your email says my refund of {amount} was issued {time}, but my bank shows nothing.",
        "I paid {amount} for delivery of {order} and it came late, so I want the delivery fee refunded.",
    ],
    "Return": [
        "how do I send {item} back? It doesn't fit.",
        "can you email me a return label for {order}?",
        "is it too late to return {item} I bought {time}?",
        "I want to swap {item} for a bigger size.",
        "where is the nearest drop-off point for returns?",
        "do I need the original box to return {item}?",
        "I changed my mind about {item}. What's the return process?",
        "the return form on your website won't accept {order}.",
        "can I bring {item} back to a shop instead of posting it?",
        "I'd like to return {item} and get my money back.",
        "who pays the postage if I send {item} back?",
        "my return label for {item} expired before I could post it.",
        "can I exchange {item} for a different colour?",
        "I bought {item} as a gift. Can my friend return it without the receipt?",
    ],
    "Late delivery": [
        "{order} was due {time} and still hasn't arrived.",
        "the tracking for {item} hasn't moved in four days.",
        "where is my parcel? It reached the depot {time} and hasn't moved since.",
        "the courier says {item} was delivered but there's nothing at my door.",
        "you promised next-day delivery for {item} and it's now day three.",
        "is {order} lost? The estimated date keeps changing.",
        "I need {item} by Friday. Will it get here in time?",
        "my delivery window for {order} was this morning and nobody came.",
        "still waiting for {item} that I ordered {time}.",
        "if {order} isn't here by tomorrow, what can you do?",
        "the delivery date for {item} moved again, for the third time.",
        "{order} went out for delivery {time} and nothing has come.",
    ],
    "Damaged item": [
        "{item} arrived with a crack down the side.",
        "the box was crushed and {item} inside is dented.",
        "{item} stopped working after one day.",
        "one of the legs on {item} snapped as I unpacked it.",
        "{item} came scratched all over the front.",
        "the parcel rattled and {item} was in pieces when I opened it.",
        "{item} leaks from the bottom.",
        "there's a tear in the seam of {item}.",
        "the switch on {item} is broken out of the box.",
        "{item} arrived broken. Can I get a replacement?",
        "{item} from {order} has a burn mark and smells of smoke.",
        "the handle of {item} came off the first time I used it.",
    ],
    "Wrong item": [
        "I ordered {item} but received {item2}.",
        "the parcel for {order} had someone else's things in it.",
        "you sent me the wrong size of {item}.",
        "{item} came in red, but I chose black.",
        "{order} arrived without {item}: it isn't in the box.",
        "the parcel has my name on it but inside is {item2}, which I never ordered.",
        "I got two of {item} and none of {item2}.",
        "this isn't the model I paid for: {item} is the older version.",
        "the box says {item} but the thing inside is {item2}.",
        "I received {item2} instead of {item} in {order}.",
        "{order} was meant to have three items and only {item} came.",
        "the colour and size of {item} don't match what I picked.",
    ],
    "Cancel order": [
        "please cancel {order} before it ships.",
        "I ordered {item} by mistake. Can you stop the order?",
        "how do I cancel an order I placed {time}?",
        "I found {item} cheaper elsewhere, so please cancel my purchase.",
        "can I cancel just {item} and keep the rest of {order}?",
        "the cancel button is greyed out for {order}.",
        "don't send {item}, I no longer need it.",
        "I placed {order} twice by accident. Cancel the second one, please.",
        "I'd like to call off {order}; it hasn't left the warehouse yet.",
        "is it still possible to cancel {item}? I ordered it {time}.",
        "{order} is taking too long to ship, so I want to cancel it.",
        "stop {order} please, I typed the wrong address.",
    ],
}

DESCRIPTIONS = {
    "Refund": "the customer wants money paid back, or asks where a refund is",
    "Return": "the customer wants to send an item back or exchange it, or asks how returns work",
    "Late delivery": "an order has not arrived on time, or its tracking is stuck",
    "Damaged item": "an item arrived broken, damaged or faulty",
    "Wrong item": "the parcel held a different, wrong-size or wrong-colour item, or an item is missing from it",
    "Cancel order": "the customer wants to cancel an order, or part of one, before it is delivered",
}


def fill(template):
    item = rng.choice(ITEMS)
    item2 = rng.choice([i for i in ITEMS if i != item])
    slots = {"item": item, "item2": item2, "order": rng.choice(ORDER), "time": rng.choice(TIME), "amount": rng.choice(AMOUNT)}
    body = re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], template)
    hello = rng.choice(HELLO)
    body = body[0].upper() + body[1:] if not hello else body
    return hello + body + rng.choice(BYE)


# Per class: the seed training texts come from 4 of its phrasings (one text each), so the round-0 student has seen
# only a few ways of saying each intent; validation, test and the pool draw from every phrasing.
SEED_TEMPLATES, VAL, TEST, POOL = 4, 10, 20, 70
split = {"seed_train": [], "seed_val": [], "test": [], "pool": []}
seen = set()


def unique(template):
    while True:
        text = fill(template)
        key = re.sub(r"\W+", " ", text.lower()).strip()
        if key not in seen:
            seen.add(key)
            return text


for label, templates in CLASSES.items():
    order = templates[:]
    rng.shuffle(order)
    for t in order[:SEED_TEMPLATES]:
        split["seed_train"].append({"text": unique(t), "label": label})
    for name, n in [("seed_val", VAL), ("test", TEST), ("pool", POOL)]:
        for i in range(n):
            split[name].append({"text": unique(order[i % len(order)] if name == "pool" else rng.choice(order)), "label": label})

for name, items in split.items():
    rng.shuffle(items)
    with open(f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in items:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
with open("labels.txt", "w", encoding="utf-8", newline="\n") as f:
    for label in CLASSES:
        f.write(f"{label}\t{DESCRIPTIONS[label]}\n")
print({k: len(v) for k, v in split.items()})
