# ruff: noqa: RUF001  (multilingual text is the point: full-width punctuation, Cyrillic, dotless i)
"""Built-in procedural prompt content: vocabularies, templates and fillers (no corpus needed).

Breadth is combinatorial: ~30 domains of concepts x dozens of templates x audiences, formats and constraints
give millions of distinct prompts, so "many distinct prompts" alone separates nothing. What separates the
populations is how they use the space: casual users wander in their own language with follow-ups, developers
stay in code, business apps repeat one narrow template, eval runs replay a fixed public test set, and harvesters
sweep the whole space through a handful of wrappers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

# ---------------------------------------------------------------------------------------------- concepts
DOMAINS: dict[str, tuple[str, ...]] = {
    "physics": ("quantum entanglement", "special relativity", "thermodynamic entropy", "superconductivity",
                "the photoelectric effect", "dark matter", "Bernoulli's principle", "wave-particle duality",
                "nuclear fusion", "the Doppler effect", "angular momentum", "semiconductor band gaps"),
    "chemistry": ("covalent bonding", "chemical equilibrium", "catalysis", "electronegativity", "polymerization",
                  "acid-base titration", "redox reactions", "chirality", "the periodic trends", "buffer solutions",
                  "organic reaction mechanisms", "crystal lattices"),
    "biology": ("CRISPR gene editing", "photosynthesis", "mitochondrial DNA", "natural selection",
                "the immune response", "protein folding", "epigenetics", "the gut microbiome", "cell signalling",
                "symbiosis", "neuroplasticity", "horizontal gene transfer"),
    "medicine": ("type 2 diabetes", "antibiotic resistance", "hypertension", "mRNA vaccines", "migraine",
                 "sleep apnea", "statins", "iron deficiency", "concussion recovery", "anxiety disorders",
                 "the placebo effect", "autoimmune disease"),
    "history": ("the fall of the Roman Empire", "the Meiji Restoration", "the Silk Road", "the French Revolution",
                "the Cold War", "the printing press", "the Ottoman Empire", "decolonization in Africa",
                "the Industrial Revolution", "the Mongol conquests", "the Renaissance", "the Bretton Woods system"),
    "geography": ("plate tectonics", "monsoon climates", "river deltas", "urbanization", "desertification",
                  "the Andes", "coral reefs", "permafrost", "fjords", "groundwater aquifers"),
    "economics": ("inflation", "comparative advantage", "monetary policy", "game theory", "minimum wage",
                  "supply chain shocks", "price elasticity", "universal basic income", "trade deficits",
                  "behavioral economics", "externalities", "quantitative easing"),
    "finance": ("index funds", "compound interest", "options pricing", "bond yields", "venture capital",
                "portfolio diversification", "credit scores", "mortgage refinancing", "stock buybacks",
                "cryptocurrency custody", "hedging currency risk", "discounted cash flow"),
    "law": ("contract law", "intellectual property", "GDPR compliance", "tenant rights", "antitrust",
            "the burden of proof", "non-compete clauses", "fair use", "employment discrimination",
            "international arbitration", "data retention rules", "product liability"),
    "philosophy": ("free will", "utilitarianism", "the trolley problem", "existentialism", "the mind-body problem",
                   "moral relativism", "Stoicism", "the ship of Theseus", "epistemic humility", "Kant's ethics",
                   "the problem of induction", "personal identity"),
    "literature": ("magical realism", "the unreliable narrator", "Shakespeare's tragedies", "Russian novels",
                   "haiku", "dystopian fiction", "stream of consciousness", "the hero's journey",
                   "postcolonial literature", "Gothic fiction", "epistolary novels", "satire"),
    "music": ("jazz improvisation", "the circle of fifths", "baroque counterpoint", "hip-hop sampling",
              "music theory modes", "film scoring", "polyrhythms", "synthesizer design", "K-pop production",
              "flamenco", "the blues scale", "orchestration"),
    "art": ("impressionism", "perspective drawing", "color theory", "Bauhaus design", "watercolor technique",
            "street art", "Renaissance frescoes", "minimalism", "ukiyo-e prints", "art restoration"),
    "sports": ("marathon training", "the offside rule", "strength periodization", "cricket scoring",
               "basketball analytics", "swimming technique", "chess openings", "tennis serves",
               "Formula 1 strategy", "rock climbing grades"),
    "cooking": ("sourdough fermentation", "the Maillard reaction", "knife skills", "sous vide", "emulsions",
                "Thai curry pastes", "pasta from scratch", "meal prepping", "spice blending", "pickling",
                "braising", "vegan protein sources"),
    "travel": ("visiting Kyoto", "backpacking in Patagonia", "jet lag", "travel insurance", "train travel in Europe",
               "budget travel in Vietnam", "visa requirements", "road trips in Iceland", "packing light",
               "solo travel safety"),
    "psychology": ("cognitive biases", "attachment theory", "habit formation", "motivation", "burnout",
                   "the Dunning-Kruger effect", "procrastination", "memory consolidation", "grief", "flow states"),
    "computer science": ("hash tables", "the CAP theorem", "garbage collection", "public-key cryptography",
                         "consensus algorithms", "compilers", "dynamic programming", "virtual memory",
                         "TCP congestion control", "transformers in machine learning", "B-trees",
                         "the halting problem"),
    "mathematics": ("prime numbers", "Bayes' theorem", "eigenvalues", "the Fourier transform", "group theory",
                    "the central limit theorem", "graph coloring", "Gödel's incompleteness theorems",
                    "differential equations", "Markov chains", "fractals", "modular arithmetic"),
    "astronomy": ("black holes", "exoplanet detection", "the cosmic microwave background", "neutron stars",
                  "solar flares", "the life cycle of stars", "gravitational waves", "the Kuiper belt",
                  "galaxy formation", "the Drake equation"),
    "engineering": ("bridge design", "heat pumps", "lithium-ion batteries", "control systems", "3D printing",
                    "wind turbines", "water treatment", "earthquake-resistant buildings", "PCB design",
                    "jet engines"),
    "environment": ("carbon capture", "ocean acidification", "rewilding", "microplastics", "renewable subsidies",
                    "biodiversity loss", "urban heat islands", "composting", "deforestation", "carbon markets"),
    "politics": ("proportional representation", "federalism", "lobbying", "populism", "the separation of powers",
                 "referendums", "central bank independence", "soft power", "electoral redistricting",
                 "coalition governments"),
    "linguistics": ("language acquisition", "tonal languages", "etymology", "pidgins and creoles",
                    "the Sapir-Whorf hypothesis", "sign languages", "phonetics", "code-switching", "dialects"),
    "education": ("spaced repetition", "the flipped classroom", "standardized testing", "Montessori schools",
                  "homeschooling", "learning disabilities", "online courses", "grading rubrics"),
    "business": ("product-market fit", "OKRs", "pricing strategy", "remote team management", "supply chains",
                 "customer churn", "negotiation", "franchising", "business model canvas", "layoffs"),
    "marketing": ("SEO", "brand positioning", "A/B testing", "influencer marketing", "email campaigns",
                  "customer personas", "viral growth loops", "content marketing"),
    "agriculture": ("crop rotation", "vertical farming", "soil health", "irrigation", "pollinator decline",
                    "precision agriculture", "livestock welfare"),
    "architecture": ("passive house design", "brutalism", "Gothic cathedrals", "adaptive reuse", "timber skyscrapers",
                     "urban zoning", "acoustics in concert halls"),
    "film": ("film noir", "the three-act structure", "cinematography lighting", "documentary ethics",
             "animation pipelines", "the French New Wave", "sound design"),
}  # fmt: skip
DOMAIN_NAMES = tuple(DOMAINS)
ALL_CONCEPTS: tuple[str, ...] = tuple(c for cs in DOMAINS.values() for c in cs)

AUDIENCES = (
    "a five-year-old",
    "a high school student",
    "a first-year undergraduate",
    "a busy executive",
    "a domain expert",
    "my grandmother",
    "a non-native speaker",
    "a software engineer",
    "a journalist",
)
FORMATS = (
    "a short essay",
    "a bulleted summary",
    "a table",
    "a Socratic dialogue",
    "an FAQ",
    "a lecture outline",
    "a tweet thread",
    "a one-page brief",
    "a poem",
    "a step-by-step guide",
)
PEOPLE = (
    "Maria",
    "Kenji",
    "Aisha",
    "Lukas",
    "Priya",
    "Tom",
    "Chen Wei",
    "Fatima",
    "Diego",
    "Olga",
    "Samir",
    "Grace",
    "Ibrahim",
    "Yuki",
    "Noah",
    "Ana",
    "Ravi",
    "Emma",
    "Kwame",
    "Sofia",
)
PLACES = (
    "a small coastal town",
    "a megacity",
    "a Martian colony",
    "a rural village",
    "a university campus",
    "a remote island",
    "a mountain monastery",
    "a space station",
    "a refugee camp",
    "medieval Europe",
)
CONDITIONS = (
    "it were twice as strong",
    "it had never been discovered",
    "it happened a century earlier",
    "it were applied at planetary scale",
    "it were banned tomorrow",
    "it cost nothing",
    "it only worked at night",
    "everyone understood it perfectly",
)


def concept(rng: random.Random, domain: str | None = None) -> str:
    if domain is None:
        return ALL_CONCEPTS[rng.randrange(len(ALL_CONCEPTS))]
    pool = DOMAINS[domain]
    return pool[rng.randrange(len(pool))]


# ---------------------------------------------------------------------------------------------- broad questions
# Encyclopaedic, formal questions across all domains: the harvesters' raw material (and a researcher's).
BROAD_TEMPLATES = (
    "Explain {c} in detail.",
    "What are the main causes and consequences of {c}?",
    "Compare and contrast {c} and {c2}.",
    "How does {c} work? Give concrete examples.",
    "Describe the history and development of {c}.",
    "What are the most common misconceptions about {c}?",
    "Write an essay on the role of {c} in {d}.",
    "Give a step-by-step explanation of {c} for {a}.",
    "Summarize the current expert consensus on {c}.",
    "List ten key facts about {c}, with a sentence of explanation each.",
    "How is {c} related to {c2}?",
    "What are the advantages and disadvantages of {c}?",
    "Explain {c} to {a}, then to {a2}.",
    "Present {c} as {f}.",
    "What open problems remain in the study of {c}?",
    "Design a lesson plan that teaches {c} to {a}.",
    "What would an expert in {d} say about {c}?",
    "Critique the standard textbook account of {c}.",
    "Define {c} precisely and give three worked examples.",
    "What ethical questions does {c} raise?",
)
NOVEL_TEMPLATES = (
    "{p} lives in {pl} and wants to use {c} to solve a local problem. What could go wrong, and how should {p} plan?",
    "Suppose {c} and {c2} interacted in {pl}. Predict the outcome and justify each step.",
    "What would happen to {c} if {cond}? Reason it through carefully.",
    "A startup claims to combine {c} with {c2}. Evaluate whether this is plausible.",
    "Construct a thought experiment that tests the limits of {c}.",
    "If you had to teach {c} using only ideas from {d}, how would you do it?",
    "{p} argues that {c} is overrated. Steelman the argument and then rebut it.",
    "Estimate, with explicit assumptions, how {c} would change daily life in {pl} over ten years.",
    "Find the hidden connection between {c}, {c2} and {c3}.",
    "Rank five real-world applications of {c} by impact and explain the ranking.",
)


_SLOT_POOLS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("d", DOMAIN_NAMES),
    ("a", AUDIENCES),
    ("a2", AUDIENCES),
    ("f", FORMATS),
    ("p", PEOPLE),
    ("pl", PLACES),
    ("cond", CONDITIONS),
)


def _fill(rng: random.Random, template: str, first: str | None = None) -> str:
    # Only the slots a template uses are drawn, so cheap templates stay cheap.
    slots: dict[str, str] = {}
    if "{c}" in template:
        slots["c"] = first if first is not None else concept(rng)
    if "{c2}" in template:
        slots["c2"] = concept(rng)
    if "{c3}" in template:
        slots["c3"] = concept(rng)
    for name, pool in _SLOT_POOLS:  # in a fixed order: the draws, and so the output, stay reproducible
        if "{" + name + "}" in template:
            slots[name] = rng.choice(pool)
    return template.format(**slots)


def broad_question(rng: random.Random) -> str:
    return _fill(rng, rng.choice(BROAD_TEMPLATES))


def novel_question(rng: random.Random) -> str:
    return _fill(rng, rng.choice(NOVEL_TEMPLATES))


_GRID_TEMPLATES = BROAD_TEMPLATES + NOVEL_TEMPLATES


def grid_question(rng: random.Random, index: int) -> str:
    """Question ``index`` of a systematic sweep: template and main concept walk a fixed grid, so distinct
    indices below ``len(templates) * len(concepts)`` give distinct questions (how coverage sweeps are written)."""
    template = _GRID_TEMPLATES[index % len(_GRID_TEMPLATES)]
    first = ALL_CONCEPTS[(index // len(_GRID_TEMPLATES)) % len(ALL_CONCEPTS)]
    return _fill(rng, template, first)


def math_word_problem(rng: random.Random) -> str:
    """A grade-school word problem with fresh numbers (the shape of GSM8K's training items)."""
    p, q = rng.sample(PEOPLE, 2)
    a, b, c = rng.randrange(3, 60), rng.randrange(2, 12), rng.randrange(2, 9)
    item = rng.choice(("apples", "stickers", "books", "cupcakes", "marbles", "tickets", "pencils", "coins"))
    price = rng.choice((2, 3, 4, 5, 1.5, 2.5, 0.75))
    return rng.choice(
        (
            f"{p} has {a} {item}. {q} gives {p} {b} times as many {item} as {p} already has, and then {p} gives away "
            f"{c}. How many {item} does {p} have now?",
            f"{p} sells {item} for ${price} each. On Monday {p} sells {a}, and on Tuesday {b} more than on Monday. "
            f"How much money does {p} make over the two days?",
            f"A class of {a + 10} students shares {a * c} {item} equally, and {b} students are absent. How many "
            f"{item} does each present student get?",
            f"{p} reads {b} pages every weekday and {c * 3} pages on each weekend day. How many weeks does it take "
            f"to finish a book of {a * 20} pages?",
            f"{q} is {a} years old, which is {c} years more than twice {p}'s age. How old will {p} be in {b} years?",
            f"A train leaves at {b}:{a % 60:02d} and travels {a * 3} km at {c * 10 + 40} km/h. {p} waits "
            f"{b * 5} minutes at the destination before calling {q}. At what time does {p} call?",
            f"{p} saves ${a} a month and spends {c * 10}% of it on {item}. After {b} months, how much has {p} saved?",
            f"A recipe needs {c} eggs for every {b} {item}. {p} wants to make {a * b} {item}. How many eggs are "
            f"needed, and how many cartons of {rng.choice((6, 10, 12))} must {p} buy?",
        )
    )


# ---------------------------------------------------------------------------------------------- casual chat
# Per language: openers with slots {t} (a topic in that language) and {x} (a second one), and follow-ups.
CASUAL: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        ("can you help me plan {t}?", "what's a good gift for my {x} who likes {t}?",
         "write a short poem about {t}", "I'm feeling stressed about {t}. any advice?",
         "explain {t} like I'm five", "how do I get better at {t}?", "is it normal to worry about {t}?",
         "give me 5 ideas for {t} this weekend", "help me write a message to my {x} about {t}",
         "what should I know before starting {t}?", "tell me a fun fact about {t}",
         "recommend some books about {t}", "my {x} and I disagree about {t}. who is right?",
         "summarize the pros and cons of {t} in a few bullet points"),
        ("birthday party", "learning guitar", "moving to a new city", "job interview", "running", "houseplants",
         "budgeting", "a trip to Lisbon", "cooking for guests", "sleep", "a dog adoption", "photography",
         "wedding speech", "climate change", "a vegetable garden", "chess", "studying for exams", "a used car"),
        ("thanks! can you make it shorter?", "what about for beginners?", "can you give an example?",
         "ok and what if I have less time?", "make it funnier", "translate that to spanish",
         "hmm, that's not quite right. try again?", "why?", "can you put that in a table?",
         "great, now a version for my boss", "what would you do?"),
    ),
    "es": (
        ("¿me ayudas a planear {t}?", "escribe un poema corto sobre {t}", "explícame {t} de forma sencilla",
         "¿qué le puedo regalar a mi {x} que le gusta {t}?", "dame 5 ideas para {t}",
         "¿cómo puedo mejorar en {t}?", "estoy preocupado por {t}, ¿algún consejo?"),
        ("una fiesta de cumpleaños", "aprender guitarra", "una entrevista de trabajo", "el fútbol",
         "ahorrar dinero", "un viaje a México", "cocinar paella", "dormir mejor", "el cambio climático"),
        ("gracias, ¿puedes hacerlo más corto?", "¿y para principiantes?", "dame un ejemplo", "¿por qué?",
         "hazlo más divertido"),
    ),
    "pt": (
        ("pode me ajudar a planejar {t}?", "escreva um poema curto sobre {t}", "me explique {t} de forma simples",
         "me dê 5 ideias para {t}", "como posso melhorar em {t}?", "estou ansioso com {t}, algum conselho?"),
        ("uma festa de aniversário", "aprender violão", "uma entrevista de emprego", "o futebol",
         "economizar dinheiro", "uma viagem ao Nordeste", "fazer pão", "dormir melhor", "o vestibular"),
        ("obrigado! pode resumir?", "e para iniciantes?", "me dá um exemplo", "por quê?", "deixa mais engraçado"),
    ),
    "fr": (
        ("peux-tu m'aider à organiser {t} ?", "écris un petit poème sur {t}", "explique-moi {t} simplement",
         "donne-moi 5 idées pour {t}", "comment progresser en {t} ?", "je stresse à cause de {t}, des conseils ?"),
        ("un anniversaire", "apprendre la guitare", "un entretien d'embauche", "la cuisine", "mon budget",
         "un voyage en Bretagne", "le sommeil", "le réchauffement climatique", "un déménagement"),
        ("merci ! tu peux raccourcir ?", "et pour un débutant ?", "un exemple ?", "pourquoi ?",
         "rends-le plus drôle"),
    ),
    "de": (
        ("kannst du mir helfen, {t} zu planen?", "schreib ein kurzes Gedicht über {t}",
         "erklär mir {t} ganz einfach", "gib mir 5 Ideen für {t}", "wie werde ich besser in {t}?",
         "ich mache mir Sorgen wegen {t}, hast du Tipps?"),
        ("eine Geburtstagsfeier", "Gitarre lernen", "ein Vorstellungsgespräch", "Fußball", "Geld sparen",
         "eine Reise nach Wien", "Brot backen", "besser schlafen", "den Klimawandel", "einen Umzug"),
        ("danke! geht das kürzer?", "und für Anfänger?", "gib mir ein Beispiel", "warum?", "mach es lustiger"),
    ),
    "it": (
        ("mi aiuti a organizzare {t}?", "scrivi una breve poesia su {t}", "spiegami {t} in modo semplice",
         "dammi 5 idee per {t}", "come posso migliorare in {t}?"),
        ("una festa di compleanno", "imparare la chitarra", "un colloquio di lavoro", "il calcio",
         "risparmiare", "un viaggio in Sicilia", "fare la pasta fresca", "dormire meglio"),
        ("grazie! puoi accorciarlo?", "e per principianti?", "fammi un esempio", "perché?"),
    ),
    "ru": (
        ("помоги спланировать {t}", "напиши короткое стихотворение про {t}", "объясни простыми словами {t}",
         "дай 5 идей для {t}", "как мне стать лучше в {t}?", "я переживаю из-за {t}, что посоветуешь?"),
        ("день рождения", "игру на гитаре", "собеседование", "футбол", "экономию денег", "поездку в Казань",
         "выпечку хлеба", "сон", "изменение климата", "переезд"),
        ("спасибо! можно короче?", "а для новичков?", "приведи пример", "почему?", "сделай смешнее"),
    ),
    "zh": (
        ("你能帮我计划一下{t}吗？", "写一首关于{t}的短诗", "用简单的话解释一下{t}", "给我五个关于{t}的建议",
         "我对{t}有点焦虑，有什么建议吗？", "怎样才能提高{t}？"),
        ("生日聚会", "学吉他", "工作面试", "跑步", "省钱", "去成都旅行", "做饭", "睡眠", "气候变化", "搬家"),
        ("谢谢！能再短一点吗？", "适合初学者吗？", "举个例子", "为什么？", "再幽默一点"),
    ),
    "ja": (
        ("{t}の計画を手伝ってくれる？", "{t}についての短い詩を書いて", "{t}を簡単に説明して",
         "{t}のアイデアを5つちょうだい", "{t}が心配です。何かアドバイスある？", "{t}が上手になるには？"),
        ("誕生日パーティー", "ギターの練習", "就職の面接", "ランニング", "節約", "京都旅行", "料理", "睡眠",
         "引っ越し"),
        ("ありがとう！もっと短くできる？", "初心者向けには？", "例をあげて", "なんで？", "もっと面白くして"),
    ),
    "ko": (
        ("{t} 계획 좀 도와줄래?", "{t}에 대한 짧은 시를 써줘", "{t}을 쉽게 설명해줘", "{t} 아이디어 5개 줘",
         "{t} 때문에 스트레스 받아. 조언해줄래?"),
        ("생일 파티", "기타 배우기", "면접", "러닝", "돈 모으기", "부산 여행", "요리", "수면", "이사"),
        ("고마워! 더 짧게 해줄래?", "초보자용으로는?", "예시 들어줘", "왜?"),
    ),
    "tr": (
        ("{t} planlamama yardım eder misin?", "{t} hakkında kısa bir şiir yaz", "{t} konusunu basitçe anlat",
         "{t} için 5 fikir ver"),
        ("doğum günü partisi", "gitar öğrenmek", "iş görüşmesi", "futbol", "para biriktirmek", "Kapadokya gezisi"),
        ("teşekkürler! kısaltır mısın?", "yeni başlayanlar için?", "bir örnek ver", "neden?"),
    ),
    "id": (
        ("bisa bantu aku merencanakan {t}?", "tulis puisi pendek tentang {t}", "jelaskan {t} dengan sederhana",
         "kasih 5 ide untuk {t}"),
        ("pesta ulang tahun", "belajar gitar", "wawancara kerja", "sepak bola", "menabung", "liburan ke Bali"),
        ("makasih! bisa lebih singkat?", "kalau untuk pemula?", "kasih contoh", "kenapa?"),
    ),
}  # fmt: skip
LANGUAGES = tuple(CASUAL)
RELATIONS = ("mom", "dad", "partner", "boss", "friend", "sister", "brother", "roommate", "teacher", "neighbor")


def casual_opening(rng: random.Random, lang: str) -> str:
    openers, topics, _ = CASUAL.get(lang, CASUAL["en"])
    text = rng.choice(openers).format(t=rng.choice(topics), x=rng.choice(RELATIONS))
    roll = rng.random()
    if lang == "en" and roll < 0.25:
        # Not every casual question is about daily life: people also ask about anything they just read.
        text = rng.choice(("what is {c}?", "why is {c} important", "tell me about {c}", "is {c} real?")).format(
            c=concept(rng)
        )
    elif roll < 0.35 and lang in ("en", "de", "fr", "es"):
        text = text[0].upper() + text[1:]
    return text


def casual_followup(rng: random.Random, lang: str) -> str:
    return rng.choice(CASUAL.get(lang, CASUAL["en"])[2])


# ---------------------------------------------------------------------------------------------- code
CODE_LANGS = (
    "Python",
    "Python",
    "Python",
    "TypeScript",
    "JavaScript",
    "Go",
    "Rust",
    "Java",
    "C++",
    "SQL",
    "Bash",
    "C#",
    "Kotlin",
    "Ruby",
    "PHP",
)
CODE_TASKS = (
    "parse a CSV file and sum a column",
    "debounce a function",
    "retry an HTTP request with backoff",
    "read a large file line by line",
    "implement an LRU cache",
    "validate an email address",
    "merge two sorted lists",
    "paginate an API",
    "hash a password",
    "write a unit test for a date parser",
    "deduplicate records by key",
    "stream JSON from a socket",
    "run tasks concurrently with a limit",
    "connect to Postgres with a pool",
    "resize images in a folder",
    "schedule a cron job",
    "convert timestamps between time zones",
    "build a CLI with subcommands",
    "mock a database in tests",
    "profile a slow function",
    "serialize a dataclass",
    "handle SIGTERM gracefully",
)
ERRORS = (
    "TypeError: 'NoneType' object is not subscriptable",
    "KeyError: 'id'",
    "IndexError: list index out of range",
    "error[E0502]: cannot borrow `v` as mutable because it is also borrowed as immutable",
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "Uncaught TypeError: Cannot read properties of undefined (reading 'map')",
    "java.lang.NullPointerException",
    "ModuleNotFoundError: No module named 'numpy'",
    "psycopg2.OperationalError: could not connect to server",
    "Segmentation fault (core dumped)",
    "ERROR 1064 (42000): You have an error in your SQL syntax",
    "RecursionError: maximum recursion depth exceeded",
)
_IDENTS = ("items", "user", "data", "rows", "result", "config", "cache", "orders", "payload", "node", "buf", "ctx")


def code_snippet(rng: random.Random) -> str:
    """A few lines of plausible code to paste into a question (the detail varies, the shape is familiar)."""
    a, b, c = rng.sample(_IDENTS, 3)
    n = rng.randrange(2, 50)
    return rng.choice(
        (
            f"def process({a}):\n    {b} = []\n    for x in {a}:\n        if x['{c}'] > {n}:\n"
            f"            {b}.append(x)\n    return {b}[0]['{c}']\n",
            f"async function load{a.title()}(id) {{\n  const res = await fetch(`/api/{a}/${{id}}`);\n"
            f"  const {b} = await res.json();\n  return {b}.{c}.map(x => x.value * {n});\n}}\n",
            f"func handle(w http.ResponseWriter, r *http.Request) {{\n    var {a} *{b.title()}\n"
            f'    json.NewDecoder(r.Body).Decode({a})\n    fmt.Fprintf(w, "%d", {a}.{c.title()})\n}}\n',
            f"SELECT {a}.id, COUNT({b}.id) FROM {a} LEFT JOIN {b} ON {b}.{a}_id = {a}.id\n"  # noqa: S608 (prompt text, not a query)
            f"WHERE {a}.{c} > {n} GROUP BY {a}.id ORDER BY 2 DESC;\n",
            f'let mut {a} = vec![1, 2, 3];\nlet first = &{a}[0];\n{a}.push({n});\nprintln!("{{}}", first);\n',
        )
    )


def code_question(rng: random.Random) -> str:
    lang = rng.choice(CODE_LANGS)
    roll = rng.random()
    if roll < 0.3:
        return f"How do I {rng.choice(CODE_TASKS)} in {lang}?"
    if roll < 0.55:
        error = rng.choice(ERRORS)
        return f"I'm getting this error:\n\n{error}\n\nin this code:\n```\n{code_snippet(rng)}```\nwhat's wrong?"
    if roll < 0.7:
        return f"Refactor this to be more idiomatic {lang}:\n```\n{code_snippet(rng)}```"
    if roll < 0.82:
        return f"Write {lang} code to {rng.choice(CODE_TASKS)}. Include type hints and a short docstring."
    if roll < 0.92:
        return f"What's the difference between {rng.choice(ALL_CONCEPTS[-60:])} and {concept(rng, 'computer science')}?"
    return f"Review this code and point out bugs:\n```\n{code_snippet(rng)}{code_snippet(rng)}```"


TOOL_DEFS: tuple[dict[str, object], ...] = (
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city",
     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {"name": "search_docs", "description": "Search internal documentation",
     "parameters": {"type": "object", "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}},
                    "required": ["query"]}}},
    {"type": "function", "function": {"name": "run_sql", "description": "Run a read-only SQL query",
     "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}}},
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- research
def filler_paragraphs(rng: random.Random, n: int) -> str:
    """Pasted source material (a paper section, notes): sentences about related concepts, ``n`` paragraphs."""
    domain = rng.choice(DOMAIN_NAMES)
    paragraphs = []
    for _ in range(n):
        sentences = [
            rng.choice(
                (
                    "Prior work on {c} reported mixed results when compared with {c2}.",
                    "We measured the effect of {c} across {n} conditions and found a consistent trend.",
                    "Table {k} summarizes the relationship between {c} and {c2} in our sample.",
                    "The main limitation of this approach to {c} is its reliance on small samples.",
                    "Section {k} discusses how {c} interacts with {c2} under realistic assumptions.",
                    "These findings suggest that {c} matters more than previously assumed.",
                )
            ).format(c=concept(rng, domain), c2=concept(rng, domain), n=rng.randrange(3, 40), k=rng.randrange(1, 9))
            for _ in range(rng.randrange(3, 8))
        ]
        paragraphs.append(" ".join(sentences))
    return "\n\n".join(paragraphs)


_RESEARCH_ASKS = (
    "Summarize the key findings of this section",
    "What are the weaknesses of the argument below",
    "Extract the claims and the evidence for each",
    "Suggest follow-up experiments based on this",
)


def research_prompt(rng: random.Random) -> tuple[str, bool]:
    """A researcher's prompt and whether it asks for explicit reasoning."""
    roll = rng.random()
    if roll < 0.3:
        text = f"{rng.choice(_RESEARCH_ASKS)}:\n\n{filler_paragraphs(rng, rng.randrange(2, 12))}"
        return text, False
    if roll < 0.5:
        return (
            f"{novel_question(rng)} Please show your reasoning step by step before giving a conclusion.",
            True,
        )
    if roll < 0.65:
        return (math_word_problem(rng) + " Explain your reasoning.", True)
    return broad_question(rng), False


# ---------------------------------------------------------------------------------------------- business apps
_CUSTOMERS = ("Anna K.", "J. Smith", "Mohammed R.", "Li Na", "Pedro Alves", "Sarah O'Neil", "Tanaka", "B. Novak")
_ISSUES = {
    "billing": ("I was charged twice for order {o}", "my invoice {o} shows the wrong VAT",
                "refund for {o} still not received after {n} days", "why did my subscription price go up?"),
    "technical": ("the {p} app crashes when I open settings", "{p} won't connect to wifi after the update",
                  "error code {n} when syncing my {p}", "the {p} screen flickers since yesterday"),
    "account": ("I can't log in, password reset email never arrives", "please delete my account and data",
                "how do I change the email on my account?", "my account was locked after {n} attempts"),
    "shipping": ("order {o} has been stuck in transit for {n} days", "the {p} arrived damaged",
                 "wrong item delivered for order {o}", "can I change the delivery address for {o}?"),
    "other": ("do you have a store in {c}?", "I love the new {p}, great job", "are you hiring?",
              "is the {p} compatible with my old charger?"),
}  # fmt: skip
_CITIES = ("Berlin", "Austin", "Lyon", "Osaka", "Toronto", "Leeds", "Porto", "Pune")
_SENTIMENT_SNIPPETS = ("The {p} is {adj}. {extra}", "{adj} purchase. {extra}", "Honestly the {p} is {adj}.")
_ADJ = ("fantastic", "terrible", "okay", "better than expected", "not worth the money", "decent", "broken on arrival")
_EXTRA = ("Delivery was fast.", "Support never answered.", "Would buy again.", "Battery life is short.", "", "5 stars.")
PRODUCTS = (
    "router",
    "smart thermostat",
    "headphones",
    "e-reader",
    "blender",
    "robot vacuum",
    "smartwatch",
    "espresso machine",
    "tablet",
    "camera",
    "phone case",
    "air purifier",
)


def _order(rng: random.Random) -> str:
    return f"#{rng.randrange(100000, 999999)}"


def ticket_text(rng: random.Random, products: Sequence[str]) -> tuple[str, str]:
    """A support ticket and its true category."""
    category = rng.choice(tuple(_ISSUES))
    body = rng.choice(_ISSUES[category]).format(
        o=_order(rng), n=rng.randrange(2, 30), p=rng.choice(products), c=rng.choice(_CITIES)
    )
    greeting = rng.choice(("Hi,", "Hello", "", "Dear support,", "hey"))
    sign = rng.choice(("Thanks", "Regards", "", "Best"))
    return f"{greeting} {body}. {sign} {rng.choice(_CUSTOMERS)}".strip(), category


def review_text(rng: random.Random, products: Sequence[str]) -> str:
    return rng.choice(_SENTIMENT_SNIPPETS).format(
        p=rng.choice(products), adj=rng.choice(_ADJ), extra=rng.choice(_EXTRA)
    )


def invoice_text(rng: random.Random) -> str:
    vendor = rng.choice(("Müller GmbH", "Acme Supplies Ltd", "Sunrise Foods", "Globex Logistics", "Nordic Print AB"))
    lines = "\n".join(
        f"{rng.choice(PRODUCTS)} x{rng.randrange(1, 20)}  {rng.randrange(5, 900)}.{rng.randrange(100):02d}"
        for _ in range(rng.randrange(1, 6))
    )
    return (
        f"INVOICE {rng.randrange(1000, 99999)}\n{vendor}\n"
        f"Date: 2026-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}\n"
        f"{lines}\nTotal: {rng.randrange(50, 9000)}.{rng.randrange(100):02d} {rng.choice(('EUR', 'USD', 'GBP', 'SEK'))}"
    )


def product_brief(rng: random.Random, products: Sequence[str]) -> str:
    features = ", ".join(
        rng.sample(
            (
                "waterproof",
                "wireless",
                "energy efficient",
                "compact",
                "quiet",
                "long battery life",
                "app control",
                "recycled materials",
                "fast charging",
            ),
            3,
        )
    )
    variant = rng.choice(("Pro", "Mini", "X", "2", "Lite", "Max"))
    tone = rng.choice(("friendly", "premium", "playful", "technical"))
    return f"Product: {rng.choice(products)} {variant}\nFeatures: {features}\nTone: {tone}"


def comment_text(rng: random.Random) -> str:
    return rng.choice(
        (
            "this is the best thread on here, thanks {p}",
            "you people are idiots lol",
            "anyone know when {c} opens?",
            "buy cheap followers at my site!!!",
            "I disagree with {p} but fair point",
            "{p} is spreading lies again",
        )
    ).format(p=rng.choice(PEOPLE), c=rng.choice(_CITIES))


# ---------------------------------------------------------------------------------------------- harvesting
# Chain-of-thought elicitation wrappers, several languages (the reported campaigns used several).
COT_WRAPPERS = (
    "{q}\n\nThink step by step and show your complete reasoning before the final answer.",
    "Please reason through this carefully, writing out every intermediate step, then give the final answer.\n\n{q}",
    "You must output your full chain of thought inside <think></think> tags, then the answer.\n\nQuestion: {q}",
    "Question: {q}\nFirst explain your thinking in detail, step by step. Then write 'Final answer:' and the answer.",
    "{q}\n\n请一步一步地详细思考，写出完整的推理过程，然后给出最终答案。",
    "请详细展示你的思考过程：\n{q}",
    "{q}\n\nРассуждай шаг за шагом и подробно покажи весь ход мыслей перед ответом.",
    "{q}\n\nPiensa paso a paso y muestra todo tu razonamiento antes de la respuesta final.",
    "{q}\n\nDenke Schritt für Schritt nach und zeige deinen vollständigen Lösungsweg.",
    "{q}\n\n段階的に考え、推論の過程をすべて書いてから最終的な答えを示してください。",
)
COT_SYSTEM_PROMPTS = (
    "You are a world-class expert. Always think step by step and show all of your reasoning.",
    "You are a reasoning engine. Before every answer, write your full internal reasoning in detail.",
    "You are a helpful assistant.",
)
HARVEST_WRAPPERS = (
    "{q}",
    "Answer the following question thoroughly and accurately.\n\n{q}",
    "{q}\nProvide a comprehensive, well-structured answer.",
    "Question: {q}\nAnswer:",
    "You are an expert tutor. {q}",
    "Respond as a knowledgeable assistant would. Be detailed.\n\n### Instruction:\n{q}\n\n### Response:",
)
LOGPROB_PROBES = (
    "{q}",
    "Complete the sentence: {s}",
    "{s}",
    "Q: {q}\nA:",
    "True or false: {c} is primarily studied in {d}. Answer:",
    "The single word that best describes {c} is",
)


def sentence_prefix(rng: random.Random) -> str:
    """The beginning of a sentence to continue (next-token distribution harvesting)."""
    c = concept(rng)
    return rng.choice(
        (
            f"The most important thing to understand about {c} is that",
            f"In {rng.choice(DOMAIN_NAMES)}, {c} refers to",
            f"{rng.choice(PEOPLE)} explained {c} to {rng.choice(AUDIENCES)} by saying",
            f"Unlike {concept(rng)}, {c}",
            f"Historians disagree about {c} because",
        )
    )


def logprob_probe(rng: random.Random) -> str:
    c = concept(rng)
    return rng.choice(LOGPROB_PROBES).format(
        q=broad_question(rng), s=sentence_prefix(rng), c=c, d=rng.choice(DOMAIN_NAMES)
    )


# ---------------------------------------------------------------------------------------------- synthetic data
# Our own wording of the self-instruct / Alpaca meta-prompt (the real one is used when the corpus is given).
SELF_INSTRUCT_PROMPT = (
    "You are asked to come up with a set of 20 diverse task instructions. These instructions will be given to a "
    "language model and we will evaluate how well it completes them.\n\nRequirements:\n"
    "1. Avoid repeating the same verb, to maximize diversity.\n"
    "2. Vary the phrasing: mix questions with imperative instructions.\n"
    "3. Vary the task types: open-ended generation, classification, editing, rewriting, brainstorming, QA, etc.\n"
    "4. The model must be able to complete each task in text only.\n"
    "5. Write each instruction in English, in 1 to 2 sentences.\n"
    "6. Where useful, provide a realistic input of at most 100 words; otherwise write <noinput>.\n"
    "7. Give an appropriate output of at most 100 words.\n\nList of 20 tasks:\n"
)
SEED_TASK_VERBS = (
    "Classify",
    "Summarize",
    "Rewrite",
    "Explain",
    "Generate",
    "Translate",
    "Suggest",
    "Compare",
    "Identify",
    "Write",
    "Convert",
    "Estimate",
    "Describe",
    "Brainstorm",
    "Correct",
)


def seed_task(rng: random.Random) -> tuple[str, str, str]:
    """A procedural (instruction, input, output) seed example."""
    verb = rng.choice(SEED_TASK_VERBS)
    c = concept(rng)
    what = rng.choice(("the following text about", "a short note on", "three key ideas of", "an example of"))
    instruction = f"{verb} {what} {c}."
    given = rng.choice(("<noinput>", f"{c.capitalize()} is often misunderstood by {rng.choice(AUDIENCES)}."))
    output = f"{c.capitalize()} can be described as a central idea in {rng.choice(DOMAIN_NAMES)}."
    return instruction, given, output


def format_seed_tasks(tasks: Sequence[tuple[str, str, str]]) -> str:
    blocks = [
        f"###\n{i}. Instruction: {ins}\n{i}. Input:\n{inp}\n{i}. Output:\n{out}"
        for i, (ins, inp, out) in enumerate(tasks, 1)
    ]
    return "\n".join(blocks) + f"\n###\n{len(tasks) + 1}. Instruction:"


def instruction_response_prompt(rng: random.Random, instruction: str) -> str:
    return rng.choice(
        (
            'Generate a high-quality response to the instruction below. Return JSON with keys "instruction", "input", '
            '"output".\n\nInstruction: {i}',
            "Write the ideal assistant answer for this training example. Output only a JSON object "
            '{{"instruction": ..., "output": ...}}.\n\n{i}',
            "Create 5 diverse instruction-response pairs similar to: {i}\nFormat: JSON list.",
        )
    ).format(i=instruction)


EVOL_METHODS = (
    "Add one more constraint or requirement to the prompt.",
    "Replace general concepts with more specific ones.",
    "If the prompt can be solved with a few simple steps, rewrite it to explicitly require multiple-step reasoning.",
    "Deepen the inquiry: increase the depth and breadth of the question.",
    "Create a brand-new prompt in the same domain, but rarer and more unusual.",
    "Complicate the input by adding a table, code or data the answer must use.",
)


def evol_prompt(rng: random.Random, seed_instruction: str) -> str:
    if rng.random() < 0.25:
        return (
            f"Paraphrase the following instruction in {rng.randrange(3, 11)} different ways, keeping its meaning. "
            f"Number them.\n\n{seed_instruction}"
        )
    return (
        "I want you to act as a Prompt Rewriter. Your objective is to rewrite a given prompt into a more complex "
        "version to make famous AI systems harder to handle, while keeping it reasonable and answerable by humans."
        f"\nMethod: {rng.choice(EVOL_METHODS)}\nThe rewritten prompt may add only 10 to 20 words."
        f"\n#The Given Prompt#:\n{seed_instruction}\n#Rewritten Prompt#:"
    )


def candidate_answer(rng: random.Random, question: str) -> str:
    c = concept(rng)
    return rng.choice(
        (
            f"The answer depends on {c}. In short, the key factor is how it is applied in practice.",
            f"First, consider {c}. Second, weigh the evidence. Therefore the best answer is the second option.",
            f"I am not sure, but it probably relates to {c}.",
            f"{question.split('?')[0][:80]} is best understood through {c}, which explains most observations.",
        )
    )


def rubric_prompt(rng: random.Random, question: str) -> str:
    criteria = ", ".join(
        rng.sample(
            (
                "accuracy",
                "completeness",
                "clarity",
                "helpfulness",
                "harmlessness",
                "conciseness",
                "use of evidence",
                "reasoning quality",
            ),
            3,
        )
    )
    return (
        f"Score the following answer from 1 to 10 against this rubric: {criteria}. "
        f"Reply with the score and a one-sentence justification.\n\n[Question]\n{question}\n\n"
        f"[Answer]\n{candidate_answer(rng, question)}"
    )


def pairwise_prompt(rng: random.Random, question: str) -> str:
    return (
        "Which response is better? Answer with exactly 'A' or 'B'.\n\n"
        f"[Question]\n{question}\n\n[Response A]\n{candidate_answer(rng, question)}\n\n"
        f"[Response B]\n{candidate_answer(rng, question)}"
    )
