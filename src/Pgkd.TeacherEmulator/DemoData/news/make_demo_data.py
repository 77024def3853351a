#!/usr/bin/env python3
"""Writes the project's own small demo dataset (original texts, written for PgkdAspire, not copied from
any corpus): short news-like sentences over World, Sports, Business and Sci/Tech, built from
hand-written templates and slot fillers with a fixed seed, then split into pool / seed_train /
seed_val / test JSONL files. Run it from this folder; the output is committed, so nothing runs it at
build time."""
import json, random

rng = random.Random(20261125)

WORLD = {
    "t": [
        "{leader} of {country} meets {other} leaders to discuss {issue}.",
        "Talks between {country} and {country2} on {issue} resume after a {time} pause.",
        "Thousands march in the capital of {country} to protest {protest}.",
        "The {body} votes to send observers to {country} ahead of {event}.",
        "Flooding in northern {country} forces {num} families from their homes.",
        "{country} recalls its ambassador from {country2} over {issue}.",
        "Parliament in {country} approves a new {law} after a long night of debate.",
        "Aid convoys reach {region} of {country} as the ceasefire holds for a {time}.",
        "Voters in {country} head to the polls in a closely watched {event}.",
        "Foreign ministers from {num} nations gather in {city} to discuss {issue}.",
    ],
    "leader": ["The president", "The prime minister", "The foreign minister", "The new chancellor", "The interim leader"],
    "country": ["Norland", "Velmora", "the Republic of Tessar", "Kandoria", "Ostravia", "Marenga", "Lusvania", "Qaristan"],
    "country2": ["its southern neighbour", "a former ally", "the island state of Pella", "Brevonia", "the Duchy of Arlen"],
    "other": ["regional", "European", "African", "Pacific", "neighbouring"],
    "issue": ["border security", "refugee flows", "a disputed river dam", "fishing rights", "a prisoner exchange", "climate aid", "a trade corridor"],
    "time": ["two-week", "month-long", "three-day", "week"],
    "protest": ["rising fuel prices", "a contested election result", "new press restrictions", "the closure of rural hospitals"],
    "body": ["United Nations", "regional security council", "African Union", "Council of Europe"],
    "event": ["next month's election", "a constitutional referendum", "the presidential runoff", "local elections"],
    "num": ["3,000", "12", "several hundred", "40", "dozens of"],
    "law": ["electoral law", "anti-corruption bill", "citizenship law", "budget for the armed forces"],
    "region": ["the eastern provinces", "the coastal region", "the mountain districts", "the capital's outskirts"],
    "city": ["Geneva", "Nairobi", "Jakarta", "Vienna", "Lima"],
}

SPORTS = {
    "t": [
        "{team} beat {team2} {score} to move top of the {league}.",
        "{player} scores twice as {team} come from behind against {team2}.",
        "Injury keeps {player} out of {team}'s {match}.",
        "{team} sign {pos} {player} on a {years}-year contract.",
        "Rain delays the {tourn} final for {hours} hours.",
        "{player} wins the {tourn} in straight sets.",
        "The coach of {team} resigns after a {num}-match losing streak.",
        "{player} breaks the {event} record at the {meet}.",
        "{team} clinch the title with {num} games to spare.",
        "Fans cheer as {team} lift the cup for the first time in {years} decades.",
    ],
    "team": ["the Harbor City Hawks", "Redvale United", "the Northside Rovers", "FC Altamar", "the Granite Bears", "Lakeport Athletic", "the Desert Foxes"],
    "team2": ["their local rivals", "the defending champions", "a weakened Eastfield side", "the league leaders", "the visiting Mariners"],
    "score": ["2-1", "3-0", "98-91", "4-3", "27-24", "1-0"],
    "league": ["first division", "conference standings", "national league", "group table"],
    "player": ["striker Tomas Ilvo", "guard Dana Reyes", "veteran Anil Kapoor", "teenager Mia Sorensen", "captain Luca Ferrante", "sprinter Ade Okafor"],
    "match": ["cup semi-final", "season opener", "derby on Sunday", "playoff game"],
    "pos": ["midfielder", "goalkeeper", "point guard", "fast bowler", "winger"],
    "years": ["two", "three", "four", "five"],
    "tourn": ["city open", "national championship", "coastal classic", "indoor masters"],
    "hours": ["two", "three", "four"],
    "num": ["six", "eight", "ten", "five"],
    "event": ["400 metres", "long jump", "marathon course", "200 metres freestyle"],
    "meet": ["national trials", "indoor games", "university championships", "season's opening meet"],
}

BUSINESS = {
    "t": [
        "{company} shares rise {pct} after {news}.",
        "{company} to cut {num} jobs as {reason}.",
        "Central bank of {country} holds interest rates at {rate} percent.",
        "{company} agrees to buy {company2} for {money}.",
        "Oil prices {move} as traders weigh {factor}.",
        "{company} reports a {quarter} loss on {reason2}.",
        "Retail sales {move2} in {month}, beating forecasts.",
        "Investors sell {asset} as inflation fears return.",
        "{company} raises its full-year outlook on {news2}.",
        "Regulators fine {company} {money} over {breach}.",
    ],
    "company": ["Brightwell Foods", "Corvan Motors", "Tessaline Bank", "Northpeak Airlines", "Halvorsen Steel", "Quill Retail Group", "Meridian Insurance"],
    "company2": ["a smaller rival", "a regional grocery chain", "a logistics start-up", "its biggest supplier"],
    "pct": ["4 percent", "12 percent", "nearly 8 percent", "2.5 percent"],
    "news": ["strong holiday sales", "a surprise profit", "a new supply deal", "upbeat guidance"],
    "news2": ["cheaper raw materials", "strong export demand", "cost savings", "higher ticket prices"],
    "num": ["1,200", "450", "3,000", "800"],
    "reason": ["demand slows", "it closes two plants", "costs climb", "it moves work overseas"],
    "reason2": ["higher fuel costs", "weak demand in Asia", "a one-off legal charge", "falling prices"],
    "country": ["Norland", "Velmora", "Kandoria", "Marenga"],
    "rate": ["3.5", "4.25", "5", "2.75"],
    "money": ["$2.1 billion", "$480 million", "$75 million", "$1.3 billion"],
    "move": ["climb", "slip", "jump", "fall sharply"],
    "move2": ["rise 0.6 percent", "edge up", "grow for a third month", "rebound"],
    "factor": ["supply cuts", "a weaker dollar", "rising stockpiles", "slower factory output"],
    "quarter": ["second-quarter", "third-quarter", "first-quarter", "fourth-quarter"],
    "month": ["March", "July", "October", "December"],
    "asset": ["government bonds", "bank stocks", "technology shares", "the currency"],
    "breach": ["misleading fees", "late reporting", "price fixing", "weak money-laundering checks"],
}

SCITECH = {
    "t": [
        "{org} unveils a {device} that {feature}.",
        "Researchers at {uni} find that {finding}.",
        "A new {software} update fixes a flaw that let attackers {attack}.",
        "{org} launches a satellite to study {target}.",
        "Scientists sequence the genome of {organism}.",
        "{org} releases an open-source tool for {task}.",
        "Astronomers spot {object} orbiting a nearby star.",
        "A start-up shows a battery that {feature2}.",
        "{uni} team builds a robot that can {skill}.",
        "Hackers target {target2} with a new strain of {malware}.",
    ],
    "org": ["Orbitel", "the national space agency", "Nexa Systems", "Lumen Labs", "Quantix", "Helio Devices"],
    "device": ["folding tablet", "low-power chip", "smart watch", "home router", "pocket projector"],
    "feature": ["runs a week on one charge", "translates speech offline", "doubles download speeds", "tracks sleep with radar"],
    "feature2": ["charges in five minutes", "lasts twice as long", "uses no cobalt", "works in freezing cold"],
    "uni": ["Northbridge University", "the Institute of Applied Physics", "Caldera Tech", "a university lab in Velmora"],
    "finding": ["a common soil bacterium breaks down plastic", "bees can count to five", "a cheap catalyst splits water", "ancient ice holds living microbes"],
    "software": ["browser", "phone operating system", "email client", "database"],
    "attack": ["read private messages", "take over a device remotely", "steal saved passwords", "crash the system"],
    "target": ["polar ice", "solar storms", "ocean temperatures", "deforestation"],
    "target2": ["online banking users", "hospital networks", "smart home cameras", "small web shops"],
    "organism": ["a deep-sea squid", "the giant tortoise", "a drought-tolerant wheat", "a glowing mushroom"],
    "task": ["training language models", "detecting fake images", "mapping city traffic", "compressing video"],
    "object": ["an Earth-sized planet", "a comet with two tails", "a ring of dust", "a gas giant"],
    "skill": ["fold laundry", "climb stairs", "sort recycling", "pick ripe fruit"],
    "malware": ["ransomware", "spyware", "a password-stealing worm", "a banking trojan"],
}

import re
def fill(spec):
    tpl = rng.choice(spec["t"])
    return re.sub(r"\{(\w+)\}", lambda m: rng.choice(spec[m.group(1)]), tpl)

def capitalize(s):
    return s[0].upper() + s[1:]

PER_CLASS = 80
rows = []
for label, spec in [("World", WORLD), ("Sports", SPORTS), ("Business", BUSINESS), ("Sci/Tech", SCITECH)]:
    seen = set()
    while len(seen) < PER_CLASS:
        t = capitalize(fill(spec))
        if t not in seen:
            seen.add(t)
            rows.append({"text": t, "label": label})

rng.shuffle(rows)
# Stratified split: per class 48 pool, 12 seed_train, 8 seed_val, 12 test.
split = {"pool": [], "seed_train": [], "seed_val": [], "test": []}
sizes = [("pool", 48), ("seed_train", 12), ("seed_val", 8), ("test", 12)]
for label in ["World", "Sports", "Business", "Sci/Tech"]:
    of = [r for r in rows if r["label"] == label]
    i = 0
    for name, n in sizes:
        split[name] += of[i:i + n]
        i += n
for name, items in split.items():
    rng.shuffle(items)
    with open(f"{name}.jsonl", "w", encoding="utf-8", newline="\n") as f:
        for r in items:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
with open("labels.txt", "w", encoding="utf-8", newline="\n") as f:
    f.write("World\tInternational news: politics, diplomacy, conflicts, elections\n")
    f.write("Sports\tSport results, players, teams, competitions\n")
    f.write("Business\tCompanies, markets, the economy, finance\n")
    f.write("Sci/Tech\tScience, technology, computing, space, research\n")
print({k: len(v) for k, v in split.items()})
