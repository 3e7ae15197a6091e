//! Pipeline throughput: items per second through clean + entities + topics, with 10,
//! 1,000 and 10,000 topics, on a generated corpus of news-like feed items.
//!
//! Everything is built once, outside the timed loops:
//!
//! - the entity dictionary, cleaning rules and the `ceasefire-talks` topic come from the
//!   shipped `config/newswatch.toml`;
//! - a deterministic corpus (a splitmix64 generator, no external data): HTML items of
//!   150 to 600 words drawn Zipf-like from a few thousand common English words, each
//!   naming a few dictionary entities and 1 to 4 "subjects" from a pool of 20,000
//!   synthetic company and person names; about 10% speak of a ceasefire or talks;
//! - topic sets of N = 10, 1,000 and 10,000 monitoring rules, each tracking one subject
//!   of the same pool (a mix of phrases, prefixes, OR, AND, NOT, NEAR, `title:` and
//!   `@entity`), plus the real `ceasefire-talks` topic in every set. The smaller sets
//!   are prefixes of the larger one, and all run on the same corpus.
//!
//! Measured: `Pipeline::process_item` over the whole corpus (clean + entities +
//! topics), and, to show where the time goes, its parts: `Cleaner::clean_item`,
//! `MatchText::new` (folding the cleaned text into match form, independent of the
//! topics) and `RuleSet::analyze` alone on pre-cleaned text for N = 10 and 10,000.
//! The setup prints each rule set's pattern count, the topics matched per item and
//! the build time of the 10,000-topic rule set; with `NEWSWATCH_BENCH_SAMPLE=1` set it
//! also prints two generated items and a few topics. Figures and the machine they were
//! taken on are in BENCHMARKS.md.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{
    black_box, criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use newswatch::config::{self, Config};
use newswatch::model::{Entity, Topic};
use newswatch::parse::{FeedItem, Parsed};
use newswatch::pipeline::clean::{Article, Cleaner};
use newswatch::pipeline::dedup;
use newswatch::pipeline::rules::{entity_refs, RuleSet};
use newswatch::pipeline::text::MatchText;
use newswatch::pipeline::Pipeline;
use newswatch::query;

/// Items in the corpus.
const ITEMS: usize = 2_000;
/// Synthetic subjects (companies and people) that items mention and topics track.
const SUBJECTS: usize = 20_000;
/// Topic counts measured (the real `ceasefire-talks` topic comes on top).
const TOPIC_COUNTS: [usize; 3] = [10, 1_000, 10_000];
/// Share of items that speak of a ceasefire, a truce or talks.
const CEASEFIRE_SHARE: f64 = 0.10;
const SEED: u64 = 0x6e65_7773_7761_7463;

// ---------------------------------------------------------------------------
// Random numbers: splitmix64, so the corpus is the same on every machine and run.

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n).
    fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in [lo, hi].
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Ranks 0..n drawn with probability proportional to 1 / (rank + 1)^s.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0;
        let cdf = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit() * self.cdf[self.cdf.len() - 1];
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }
}

// ---------------------------------------------------------------------------
// Vocabulary: common English words, the first ~1,700 roughly from most to least
// frequent in news copy, then ~1,500 more in alphabetical order in the Zipf tail. Left out on purpose: the ceasefire-talks words (ceasefire, truce, peace,
// negotiation...), whose share of items is set by CEASEFIRE_SHARE instead, and
// words that are aliases of dictionary entities (place names, Trump, Waltz...).

const VOCABULARY: &str = "
the of and to a in that is for on it with as was he be by at said his from have has
are an not this but they were had i been their who we will its which or would after
more one about also there two new out up when all she her than over year years first
last can into other people could time so no some if just what them only because while
him like most before then did do against three under these our between during since
being both those may where many back any such through off well says told how still
even you my me your very again around down should now made make get including how
here four five six ten week weeks month months day days today yesterday percent
government police state city country world public group company companies officials
official president minister prime party law court news report according home national
number part end season market million billion per second next early later left long
high own same old big small little great good best better much another each few way
work use used take took give gave go went going come came see saw know known think
thought say want wanted need needs help found find show showed set put call called
keep kept ask asked told tell turn turned move moved live lived play played run ran
pay paid hold held bring brought begin began seem seemed leave become became lead led
hear heard meet met include included continue continued change changed follow followed
expected according statement added added spokesman spokeswoman agency director chief
executive leader leaders members member team support plan plans deal deals decision
issue issues case cases system program programme service services family families
children women men man woman child school schools students health care hospital
money business businesses economy economic financial bank banks price prices cost
costs tax taxes budget spending jobs job workers work union unions trade trading
investors shares stock stocks fund funds rate rates interest inflation growth sales
energy oil gas power water food security military forces troops army war attack
attacks killed death deaths dead injured fire election elections vote votes voters
campaign political policy policies parliament council committee board area region
local community communities centre center street road car cars train trains flight
flights airport border data information research study studies science scientists
technology internet online digital media social video phone phones network networks
customers customer products product industry industrial production factory plant
contract contracts lawsuit merger acquisition takeover stake earnings profit profits
revenue revenues recall probe fined fine fines resigned resignation resign arrested
arrest interview speech elected sanctions layoffs bankruptcy regulators regulator
investigation inquiry charges charged trial judge jury prosecutors lawyer lawyers
ruling appeal sentence prison rights claims claim legal illegal crime criminal
history story stories book film music art culture sport sports football game games
match player players coach club league cup win won winning lost loss losses points
title champion final finals fans stadium race opinion editorial column letter letters
weather storm storms rain snow heat temperatures climate flood floods wind winds
morning afternoon evening night hours hour minutes minute monday tuesday wednesday
thursday friday saturday sunday january february march april may june july august
september october november december spring summer autumn winter
across among within without around behind along toward towards near above below
however although though whether despite unless until whose whom whatever either
neither nor yet already almost always never often sometimes usually perhaps probably
really quite rather enough less least nearly recently currently finally simply
clearly largely mostly widely strongly directly fully likely certain clear possible
important major key main large huge strong weak hard easy full free open close
closed real true right wrong different similar general special recent current final
former future past present private personal human social international foreign
domestic global regional federal central western eastern northern southern
american british european chinese french german japanese indian african asian
general senior junior top low higher lower higher biggest largest smallest younger
older young new newer latest further major minor single double local rural urban
agreement agreements talks meeting meetings summit visit visits trip delegation
envoy ambassador embassy diplomats diplomatic foreign ministry relations ties
allies ally partner partners partnership cooperation dispute disputes crisis
conflict conflicts tension tensions threat threats warning warned warns risk risks
concern concerns fears fear hope hopes chance chances effort efforts pressure
response responses reaction criticism critics critic supporters opposition
protest protests protesters demonstrators rally rallies strike strikes march
crowd crowds demand demands request requests proposal proposals bill bills rule
rules regulation regulations reform reforms measure measures step steps action
actions move moves sign signed signing approve approved approval reject rejected
ban banned limit limits control controls allow allowed block blocked cut cuts
raise raised increase increased rise rising rose fall fell falling drop dropped
decline declined jump jumped gain gained grow grew growing boost boosted reduce
reduced slow slowed record records level levels figure figures total amount share
average range rate value values quarter quarterly annual annually forecast
outlook estimate estimates target targets goal goals result results performance
firm firms corporation startup startups owner owners founder founders executives
shareholders board directors management managers staff employees employee
workforce hiring hired fired jobs unemployment wages wage salary salaries pension
pensions benefits insurance loan loans debt debts credit bond bonds currency
dollar dollars euro euros pound pounds yen exchange markets trader traders
analyst analysts economist economists consumer consumers demand supply supplies
shortage shortages exports imports export import tariffs tariff goods retail
retailer retailers store stores shop shops brand brands advertising marketing
software hardware chip chips computer computers device devices app apps platform
platforms users user account accounts email messages message search engine
artificial intelligence model models robot robots battery batteries electric
vehicle vehicles engine engines fuel emissions carbon renewable solar nuclear
coal mine mines mining steel metal metals gold silver copper wheat grain corn
crops farmers farm farms land property properties housing homes house houses
building buildings construction project projects infrastructure bridge port ports
ship ships shipping vessel vessels cargo container freight rail railway airline
airlines aircraft plane planes pilot pilots passengers travel tourism tourists
hotel hotels restaurant restaurants event events festival concert show shows
television tv radio newspaper magazine website journalist journalists reporter
reporters editor press photo photos image images camera cameras
hospital hospitals doctor doctors nurse nurses patients patient disease virus
vaccine vaccines drug drugs treatment medical medicine cancer heart mental
outbreak infection infections symptoms test tests testing cases
university universities college education teacher teachers class classes
professor degree exam exams learning
army navy air force soldiers soldier officer officers commander general weapons
weapon missile missiles drone drones rocket rockets tank tanks artillery defence
defense air strikes bombing shelling front line frontline offensive counteroffensive
region territory territories village villages town towns capital province
district districts coast island islands river sea ocean mountain mountains lake
forest forests desert valley north south east west northeast northwest southeast
southwest
mother father son daughter brother sister wife husband friend friends neighbour
neighbours resident residents citizen citizens population migrants refugees
asylum immigration visa visas passport passports
church religious faith prayer
died dies die born life lives living alive survive survived survivor survivors
victim victims rescue rescued search searching missing found evacuated evacuation
emergency disaster damage damaged destroyed collapse collapsed crash crashed
accident accidents explosion blast injured wounded hurt safety safe danger
dangerous
announce announced announcement confirm confirmed deny denied reject rejected
admit admitted accuse accused accusation allegations alleged allegedly suspect
suspected suspects investigate investigated investigators detained detention
custody release released freed bail guilty innocent convicted conviction
fraud corruption bribery scandal leak leaked leaks documents document files file
report reports reported reporting sources source spokesperson declined comment
comments remarks statement statements interview interviews conference briefing
speech speeches address addressed message warning called calling calls urged
urge urging stressed insisted suggested noted explained described believed
believes argued argues wrote writes posted tweeted published publish
agreement treaty accord framework compromise settlement solution solutions
question questions answer answers reason reasons cause causes effect effects
impact impacts problem problems situation conditions condition process
development developments progress success failure mistake mistakes
challenge challenges opportunity opportunities advantage benefit cost
view views idea ideas position positions role roles power powers authority
authorities institution institutions organisation organization organisations
agency agencies department departments office offices bureau commission
commissioner secretary spokesman mayor governor senator senators congress
lawmakers legislators legislation constitution constitutional democracy
democratic republican conservative liberal labour socialist coalition majority
minority seats seat candidate candidates poll polls polling ballot ballots
turnout victory defeat win lose
income poverty rich poor wealth wealthy middle class working price rent rents
mortgage mortgages
child childhood parents parent baby babies teenager teenagers youth adults adult
age aged elderly
body bodies face hand hands head eyes voice word words name names language
english letter image picture sign signs list
door window room rooms table floor wall walls city streets square park garden
gardens bus buses bike bikes traffic
light dark black white red blue green yellow colour color
morning late early soon ago recently once twice daily weekly monthly yearly
everyone everything someone something anyone anything nobody nothing somewhere
anywhere everywhere
think believe feel felt look looked looking seems appear appeared appears
remain remained remains stay stayed wait waited expect expects try tried trying
start started starting stop stopped end ended ending finish finished complete
completed return returned returning reach reached send sent receive received
offer offered offers provide provided providing produce produced create created
build built develop developed design designed launch launched open opened close
closing sell sold selling buy bought buying spend spent save saved invest
invested investment investments acquire acquired merge merged bid bids
owned owns own control controlled manage managed run running operate operated
operations operation operator operators
serve served join joined joining leave leaving left quit replace replaced
appoint appointed appointment named nominate nominated hire promote promoted
step stepped down resigns
win wins beat beaten score scored scoring goal goals season seasons match
matches tournament championship olympic olympics medal medals coach manager
referee injury injuries transfer striker defender midfielder goalkeeper
tennis golf cricket rugby basketball baseball hockey boxing racing cycling
swimming athletics marathon
album song songs singer band bands actor actress star stars director movie
movies series episode novel author writer artist artists museum gallery theatre
theater dance performance award awards prize prizes
food restaurant chef menu coffee tea wine beer drink drinks meal meals
bread meat fish fruit vegetables sugar salt
animal animals dog dogs cat cats bird birds horse horses wildlife species
tree trees plants flower flowers
computer internet cyber hackers hacking hack breach attack password privacy
surveillance
space satellite satellites moon mars orbit launch mission missions astronaut
astronauts telescope
physics chemistry biology scientist researchers experiment experiments
discovery evidence analysis theory
percent percentage rate ratio half third quarter double triple dozen hundreds
thousands millions billions
first second third fourth fifth last next previous following
january's weekend weekends holiday holidays christmas easter
ability able absence academic accept accepted access accompanied accounting achieve
achieved acting active activists activity actual actually adapt addition additional
adequate adjust administration administrative admission adopted adult advance
advanced advice adviser advisers advocate affair affairs afford affordable afraid
aftermath agenda aggressive agreed aid aim aimed aims alarm alcohol alert alliance
alternative ambitious amid ancient angry announcement anniversary annual anxiety
apart apartment apparent apparently appeal appeals applied apply approach
appropriate approximately architect architecture argue argument arguments arm armed
arms arrival arrive arrived aside aspect aspects assault assembly assess assessment
asset assets assistance assistant associate associated association assume assumed
attempt attempted attempts attend attended attention attitude attorney attract
audience audit authorities automatic available avoid avoided await awake aware
awareness background balance band bank banking bar barely base based basic basis
battle bear beat beautiful beauty bed beginning behalf behaviour behavior bench
beyond billionaire birth birthday blame blamed blood board boat bomb bone bonus
border borders borrow borrowing boss bottom boundary box boy boys brain branch
brand bread break breaking breakfast breath brief briefly bright brilliant broad
broadcast broadcaster broke broken brown budget buyers cabinet cable calculate
calm camp campus candidate capable capacity captain capture captured career careful
carefully carry carried cash cast casualties catch category caught celebrate
celebration cell centre ceremony chair chairman chairwoman champion chance changes
channel chapter character charge charity chart cheap check checks chemical chest
chosen circle circumstances cite cited civil civilian civilians claimed classic
clean climb clinic closely clothes cloud coach coalition code cold collapse
colleague colleagues collect collection collective combat combination combined
comfortable command commercial commit commitment committed common communication
comparison compete competition competitive complain complaint complaints complex
component comprehensive concept concerned concluded conclusion concrete conduct
conducted confidence confident conflict congress connect connected connection
consequences consider considerable considered consistent constant consultation
consumption contact contain contained content contest context contrast contribute
contribution convention conversation convince convinced copy core corner correct
counter counting countries county couple courage course cover coverage covered
crack craft credit crew crisis criteria critical cross crucial cry cultural cup
curious custom cycle daily damage deadline deadly deal dealing dear debate decade
decades decide decided declare declared deep deeply defeat defend defended defensive
deficit define definitely degree delay delayed deliver delivered delivery democrat
democrats depend dependent deployed deployment deputy describe deserve desire
desk desperate destination destruction detail detailed details detect determine
determined device devoted diet difference difficult difficulty dinner direction
dirty disabled disagree disappear discuss discussed discussion discussions dismiss
dismissed display distance distribution divided division doctrine domestic dominant
donation donor donors draft drama dramatic draw drawn dream dress drew drive driven
driver drivers driving dry due duty eager earlier earn earned earth easily eat
edge edition effective effectively efficient elderly element elements eligible
elite else embrace emerge emerged emergency emotional emphasis empire employ
employer employers enable encourage encouraged endorse enemy enforcement engage
engaged engineer engineering engineers enjoy enormous ensure enter entered
entertainment entire entirely entrance entry environment environmental equal
equally equipment equivalent era error escape escaped essential establish
established estate ethnic evaluate eventually everyday evidence exact exactly
examine example examples excellent exception excess exchange excited exciting
exclusive excuse exercise exhibition exist existence existing exit expand expanded
expansion expectations expense expensive experience experienced expert experts
explain explore exposed exposure express expressed extend extended extension
extent external extra extraordinary extreme extremely facilities facility facing
fact factor factors fail failed fair fairly faith false familiar famous fan fashion
fast fat fault favour favor favourite feature features fee fees feeling fellow
female fewer field fields fight fighter fighters fighting fill filled finance
financing fingers fit fixed flag flat fleet flexible floor focus focused fold
folk following forced foreign forget forgotten form formal formally formation
formed formula fought foundation frame frank freedom frequently fresh fuel fully
function funding funeral furniture gain gap gap gather gathered gave gender
generally generation generous gentle genuine gift girl girls glass goal gone
govern governing governor grade gradually grand grant granted grave ground
grounds guard guarantee guest guests guidance guide guidelines guilty gun guns
habit hall handle handled hang happen happened happening happy harm headquarters
heads heavily heavy height helicopter hidden hide highlight highlighted highly
hill hire historic historical hit hits holder hole honest honour honor horror
host hosted hostage hostages hosts hot household households huge hungry hunt
identify identity ignore ignored ill illness imagine immediate immediately
implement implemented implications impose imposed impossible impressive improve
improved improvement incident incidents income independence independent index
indicate indicated indication individual individuals industrial inevitable
influence influential inform informed initial initially initiative injury inner
innovation input inside insist inspector inspired instance instead institute
intended intense intention interested interesting interests internal interpret
intervention introduce introduced invasion invest invited involve involved
involvement iron item items joint joke journey joy judgment jump jurisdiction
justice justify keen kick kill killing kind king kingdom kit knee knife knock
knowledge lack lacked landmark landscape large largely laugh launch lawn lay
layer leadership leading leak league lean learn learned least lecture legacy
legislative legitimate lend lesson lessons liberal library licence license lie
lies lifestyle lift likely limited line lines link linked links lip listen
literally literature loan located location lock logic lonely loose lord loud
love loved lovely lower loyal luck lucky lunch machine machines mad mainly
maintain maintained maintenance majority makers making male manner manufacturing
map margin marine mark marked marriage married mass massive master material
materials matter matters mature maximum meaning meaningful means meant measure
mechanism memory mention mentioned merely mess metres miles military mind minds
minimum ministers minor miss mixed mobile mode moderate modern moment momentum
mood moral moreover motion motor mount mountain mouth movement moving mystery
narrow nation nationwide native natural nature naval necessary neck negative
neighbourhood nervous net neutral newly nice normal normally note notice novel
nowhere numerous object objective obligation obvious obviously occasion occupied
occur occurred odd offence offensive offering officially ongoing opening openly
operate opponent opponents oppose opposed opposite option options order ordered
orders ordinary organised organized origin original otherwise outcome outside
overall overcome overnight oversight overseas overwhelming owe pace pack package
page pain painful paint pair panel panic paper papers parade park parliament
participate participation particular particularly parties partly pass passed
passing passion path pattern patterns pause peak penalty pension perfect
perfectly perform permanent permission permit persuade phase phenomenon physical
pick picked piece pieces pilot pitch place placed places plain planned planning
plastic plate pleased pledge pledged plenty plot pocket poem poet pointed police
pool pop popular popularity portion pose potential potentially pound pour powerful
practical practice praise praised pray precisely predict predicted prefer
pregnant premier premium prepare prepared presence presidency presidential
presidents pressed pretty prevent prevented previously pride primarily primary
principle principles print prior priority prisoner prisoners procedure proceed
proceedings produce producer producers professional profile promise promised
promote proof proper properly proportion prosecution prospect protect protected
protection proud prove proved proven provider providers province provision
psychological pull pulled punishment purchase purpose pursue push pushed pushing
qualified quality quick quickly quiet quit quote quoted racial racism radical
raid raids random rank rapid rapidly rare rarely rating reach react readers
reading ready realise realize reality rebel rebels recognise recognize recognised
recommend recommendation recovery recruit reduction referendum reflect reflected
refuse refused regard regarding regime regular regularly reject relative
relatively relevant relief religion rely remaining remarkable remove removed
renewed repair repeat repeated repeatedly replace represent representative
representatives represented republic reputation require required requirement
reserve reserves resolution resolve resource resources respect respond responded
responsibility responsible rest restore restrictions retain retire retired
retirement reveal revealed revenue reverse review reviewed revolution reward
ride ring rise risky rival rivals rock roll roof root rough round route row royal
rural rush sad safely sake sample satisfied scale scene schedule scheme screen
sea seal secret secretly section sector sectors secure seek seeking seized
select selected selection self senate sense sensitive sent separate serious
seriously servant session settle settled severe sexual shadow shape sharp
sharply shed shelter shift shock shoot shooting shop shortly shot shoulder
shut sick side sides sight signal significant significantly silence silent simple
site sites sitting size skill skills sky sleep slightly slowly smart smile smoke
soft soil solid somewhat sort sought sound sounds span speak speaker speaking
specific specifically spend spirit split spoke sponsor spot spread squad stable
staff stage stake stand standard standards standing stands stated station
status steady steal stock stolen stone stood storage strategic strategy stream
strength stress stretch strict strike strikes struck structure struggle
struggling stuck style subject submit subsequent substantial succeed successful
successfully sudden suddenly suffer suffered sufficient suggest suggestion suit
suitable summit sun super surface surge surgery surprise surprised surprising
surrounding survey suspend suspended sustain sustainable swing symbol sympathy
talent talk talking tank tape task taste teach teaching tear technical technique
teen temporary tend tender term terms terrible territory terror terrorism
terrorist terrorists text thank thanks theme therefore thick thin thinking
threaten threatened threatening throughout throw thrown thus ticket tickets tight
tiny tired tone tool tools topic total touch tough tour tower track tradition
traditional tragedy trained training transition transport trap treat treated
trend trends trial tribunal trip troubled trouble trust truth tour typical
typically ultimately unable uncertain uncertainty underlying understand
understanding unexpected unfair unique unit united units unknown unlikely
unprecedented unusual upcoming upper urgent useful usual vacation valid valuable
variety various vast venture version veteran veterans via vice victory view
viewers violence violent virtual visible vision visitor visitors vital volume
voluntary volunteer volunteers vulnerable walk walked wall wanting warm warn
waste watch watched watching wave waves wealth wear weather wedding weigh weight
welcome welfare wide widespread wild willing wing winner winners wise wish
withdraw withdrawal withdrawn witness witnesses wonder wonderful wood worker
worried worry worse worst worth wound wounded writing written wrote yard yield
zone zones
";

/// Words that items put next to a subject, as news about a company or a person does.
/// Topic queries look for some of them (contract*, lawsuit, merger, resign*...).
const EVENT_WORDS: &[&str] = &[
    "contract",
    "contracts",
    "lawsuit",
    "merger",
    "acquisition",
    "takeover",
    "stake",
    "earnings",
    "profits",
    "revenue",
    "recall",
    "probe",
    "fined",
    "resigned",
    "resignation",
    "arrested",
    "interview",
    "speech",
    "elected",
    "sanctions",
    "layoffs",
    "minister",
    "chief",
    "shares",
    "deal",
    "board",
    "results",
    "investigation",
];

/// What items say about a ceasefire, in the words the `ceasefire-talks` topic uses.
const CEASEFIRE_PHRASES: &[&str] = &[
    "ceasefire",
    "cease-fire",
    "truce",
    "peace talks",
    "peace deal",
    "negotiations",
    "a ceasefire deal",
    "peace plan",
];

/// Entities news copy names most; items draw half their entity mentions from these.
const FREQUENT_ENTITIES: &[&str] = &[
    "russia",
    "ukraine",
    "putin",
    "zelensky",
    "trump",
    "kyiv",
    "moscow",
    "nato",
    "eu",
    "kremlin",
    "white-house",
    "un",
    "united-states",
];

/// The countries and presidents the `ceasefire-talks` topic requires one of.
const CEASEFIRE_ENTITIES: &[&str] = &["russia", "ukraine", "putin", "zelensky"];

// ---------------------------------------------------------------------------
// Russian and Ukrainian: common news words with their inflected forms, how items
// name the dictionary's entities (forms the shipped aliases must find, through prefix
// aliases such as `Путин*` or listed forms such as `Трампа`), ceasefire phrases in the
// words of the `ceasefire-talks` topic, and words put next to a subject. Left out of
// the vocabularies, as in English: the ceasefire words and entity names.

const RUSSIAN: &str = "
в и на не что с по о как к из за это от он для его а также но она у было года был
заявил сказал заявила сообщил сообщили сообщает отметил отметила подчеркнул добавил
напомнил считает считают говорит пишет передает президент глава министр министра
министром правительство правительства страны страна стране страной время году ее их
они более после при бы уже до только может во так же все или будет были этом того
по словам данным ранее сегодня вчера неделе неделю месяц месяца дней день город
города городе области область район района войска войск армии армия военные военных
удар удары ударов атака атаки атаку обстрел обстрела обстрелов беспилотник
беспилотники беспилотников ракета ракеты ракет погибли ранены пострадали жителей
мирных граждан власти власть министерство министерства ведомство ведомства
представитель представители официальный заявление заявления встреча встречи встрече
саммит визит визита делегация делегации стороны сторон сторона соглашение соглашения
договор договора санкции санкций экономика экономики рынок рынка цены цен нефть
нефти газа газ энергетики компания компании компанией банк банка рубль рубля доллар
доллара евро процентов миллионов миллиардов тысяч человек людей народ народа новый
новые новых новой первый первая второй последний главный большой важный
международный международных российский российские российских украинский
украинские украинских американский европейский военный политический экономический
безопасности безопасность войны война войне конфликт конфликта кризис ситуация
ситуации вопрос вопросы вопросов решение решения план плана предложение предложения
позиция позиции поддержка поддержки помощь помощи оружие оружия поставки поставок
решил решили могут должны будут продолжают продолжит обсудили обсуждали заявили
агентство издание источник источники журналистам телеканал газета эксперт эксперты
аналитики доклад доклада данные данных закон закона суд суда дело дела уголовное
проверка выборы выборов партия партии депутат депутаты парламент парламента
граница границы территории территорий регион региона регионе населения
электростанция электростанции энергосистема отключения света тепла зимой летом
весной осенью утром вечером ночью понедельник вторник среду четверг пятницу
субботу воскресенье января февраля марта апреля мая июня июля августа сентября
октября ноября декабря
";

const UKRAINIAN: &str = "
в і та у на не що з до за як про від це він для його а також але вона було року був
заявив сказав заявила повідомив повідомили повідомляє зазначив зазначила наголосив
додав нагадав вважає вважають каже пише передає президент голова міністр міністра
міністром уряд уряду країни країна країні країною час році її їх вони більше після
при би вже тільки може так же все або буде були цьому того за словами даними раніше
сьогодні вчора тижні тиждень місяць місяця днів день місто міста місті області
область район району війська військ армії армія військові військових удар удари
ударів атака атаки атаку обстріл обстрілу обстрілів безпілотник безпілотники
безпілотників ракета ракети ракет загинули поранені постраждали жителів мирних
громадян влада влади міністерство міністерства відомство відомства представник
представники офіційний заява заяви зустріч зустрічі саміт візит візиту делегація
делегації сторони сторін сторона договір договору санкції санкцій економіка
економіки ринок ринку ціни цін нафта нафти газу газ енергетики компанія компанії
компанією банк банку гривня гривні долар долара євро відсотків мільйонів мільярдів
тисяч людей людина народ народу новий нові нових нової перший перша другий
останній головний великий важливий міжнародний міжнародних російський російські
російських український українські українських американський європейський
військовий політичний економічний безпеки безпека війни війна війні конфлікт
конфлікту криза ситуація ситуації питання рішення план плану пропозиція пропозиції
позиція позиції підтримка підтримки допомога допомоги зброя зброї постачання
вирішив вирішили можуть мають будуть продовжують продовжить обговорили обговорювали
заявили агентство видання джерело джерела журналістам телеканал газета експерт
експерти аналітики доповідь доповіді дані даних закон закону суд суду справа справи
кримінальне перевірка вибори виборів партія партії депутат депутати парламент
парламенту кордон кордону території територій регіон регіону регіоні населення
електростанція електростанції енергосистема відключення світла тепла взимку влітку
навесні восени вранці ввечері вночі понеділок вівторок середу четвер п'ятницю
суботу неділю січня лютого березня квітня травня червня липня серпня вересня
жовтня листопада грудня сім'я сім'ї об'єкт об'єкти обов'язково м'ясо інтерв'ю
";

/// Entities as Russian and Ukrainian items name them, inflected: (entity id, Russian
/// forms, Ukrainian forms). The first four are `CEASEFIRE_ENTITIES`, in that order.
const CYRILLIC_ENTITIES: &[(&str, &[&str], &[&str])] = &[
    (
        "russia",
        &["Россия", "России", "Россией", "Россию", "РФ"],
        &["Росія", "Росії", "Росією", "Росію"],
    ),
    (
        "ukraine",
        &["Украина", "Украины", "Украине", "Украиной"],
        &["Україна", "України", "Україні", "Україною"],
    ),
    (
        "putin",
        &[
            "Путин",
            "Путина",
            "Путиным",
            "Владимир Путин",
            "президент России",
        ],
        &[
            "Путін",
            "Путіна",
            "Путіним",
            "Володимир Путін",
            "президент Росії",
        ],
    ),
    (
        "zelensky",
        &["Зеленский", "Зеленского", "Зеленским", "Владимир Зеленский"],
        &[
            "Зеленський",
            "Зеленського",
            "Зеленським",
            "Володимир Зеленський",
        ],
    ),
    (
        "trump",
        &["Трамп", "Трампа", "Трампом", "Дональд Трамп"],
        &["Трамп", "Трампа", "Трампом", "Трампі"],
    ),
    (
        "kyiv",
        &["Киев", "Киева", "Киеве"],
        &["Київ", "Києва", "Києві"],
    ),
    (
        "moscow",
        &["Москва", "Москвы", "Москве"],
        &["Москва", "Москви", "Москві"],
    ),
    (
        "kremlin",
        &["Кремль", "Кремля", "Кремле"],
        &["Кремль", "Кремля", "Кремлі"],
    ),
    (
        "united-states",
        &["США", "Соединенные Штаты"],
        &["США", "Сполучені Штати"],
    ),
    (
        "lavrov",
        &["Лавров", "Лаврова"],
        &["Лавров", "Лаврова", "Лавровим"],
    ),
    ("peskov", &["Песков", "Пескова"], &["Пєсков", "Пєскова"]),
    ("kharkiv", &["Харьков", "Харькове"], &["Харків", "Харкові"]),
];

const CEASEFIRE_RUSSIAN: &[&str] = &[
    "перемирие",
    "перемирия",
    "переговоры",
    "переговоров",
    "прекращение огня",
    "мирный план",
    "мирное соглашение",
];

const CEASEFIRE_UKRAINIAN: &[&str] = &[
    "перемир'я",
    "перемир\u{2019}я",
    "переговори",
    "переговорів",
    "перемовини",
    "припинення вогню",
    "мирний план",
    "мирна угода",
];

const EVENTS_RUSSIAN: &[&str] = &[
    "контракт",
    "иск",
    "слияние",
    "сделка",
    "акции",
    "прибыль",
    "выручка",
    "расследование",
    "штраф",
    "отставка",
    "арест",
    "интервью",
    "санкции",
];

const EVENTS_UKRAINIAN: &[&str] = &[
    "контракт",
    "позов",
    "злиття",
    "угода",
    "акції",
    "прибуток",
    "виручка",
    "розслідування",
    "штраф",
    "відставка",
    "арешт",
    "інтерв'ю",
    "санкції",
];

// ---------------------------------------------------------------------------
// Subjects: synthetic companies and people, the things users set topics up for.

const ONSETS: &[&str] = &[
    "b", "br", "c", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m", "n", "p", "pr", "r",
    "s", "st", "t", "tr", "v", "w", "z", "th", "sh", "ch", "sk", "bl", "",
];
const VOWELS: &[&str] = &[
    "a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "ou", "y",
];
const MIDDLE_CODAS: &[&str] = &["", "", "", "l", "n", "r", "s", "m", "nd", "lt"];
const FINAL_CODAS: &[&str] = &[
    "", "", "n", "r", "l", "s", "x", "nd", "rt", "ck", "th", "ll",
];
const SURNAME_ENDINGS: &[&str] = &[
    "", "", "sen", "son", "ova", "ez", "ini", "berg", "ley", "ton", "ski", "und", "ard", "er",
    "ic", "ov", "ali", "ens",
];
const COMPANY_SUFFIXES: &[&str] = &[
    "Systems",
    "Holdings",
    "Group",
    "Labs",
    "Energy",
    "Capital",
    "Logistics",
    "Pharma",
    "Motors",
    "Bank",
    "Foods",
    "Mining",
    "Telecom",
    "Airlines",
    "Robotics",
    "Partners",
    "Industries",
    "Shipping",
    "Media",
    "Insurance",
    "Biotech",
    "Semiconductor",
    "Retail",
    "Steel",
];
const GIVEN_NAMES: &[&str] = &[
    "Karsten", "Ingrid", "Tomas", "Maria", "Elena", "David", "Sarah", "James", "Anna", "Lukas",
    "Sofia", "Daniel", "Laura", "Michael", "Emma", "Jonas", "Olga", "Peter", "Nina", "Ahmed",
    "Fatima", "Carlos", "Lucia", "Hiroshi", "Yuki", "Wei", "Mei", "Rajesh", "Priya", "Kwame",
    "Amara", "Pierre", "Claire", "Henrik", "Astrid", "Marco", "Giulia", "Pavel", "Irina", "Stefan",
    "Katja", "Omar", "Leila", "Diego", "Camila", "Erik", "Freya", "Samuel", "Grace", "Victor",
    "Helena", "Andrew", "Rachel", "Thomas", "Julia", "Robert", "Alice", "Martin", "Eva", "Paul",
    "Hannah", "Mark", "Rosa", "Simon", "Chloe", "Felix", "Ines", "Oscar", "Vera", "Bruno", "Lena",
    "Igor", "Dana", "Nikolai", "Zara", "Arjun", "Noor", "Mateo", "Aiko",
];

enum Subject {
    Company { stem: String, full: String },
    Person { given: String, surname: String },
}

impl Subject {
    fn full(&self) -> String {
        match self {
            Subject::Company { full, .. } => full.clone(),
            Subject::Person { given, surname } => format!("{given} {surname}"),
        }
    }

    /// How an item names the subject after the first mention.
    fn later_mention(&self, rng: &mut Rng) -> String {
        let short = match self {
            Subject::Company { stem, .. } => stem,
            Subject::Person { surname, .. } => surname,
        };
        match rng.below(10) {
            0..=4 => short.clone(),
            5..=7 => self.full(),
            _ => format!("{short}'s"),
        }
    }
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A pronounceable made-up word of two or three syllables.
fn made_up_stem(rng: &mut Rng) -> String {
    let syllables = rng.range(2, 3);
    let mut out = String::new();
    for i in 0..syllables {
        out.push_str(rng.pick(ONSETS));
        out.push_str(rng.pick(VOWELS));
        let codas = if i + 1 == syllables {
            FINAL_CODAS
        } else {
            MIDDLE_CODAS
        };
        out.push_str(rng.pick(codas));
    }
    capitalise(&out)
}

/// `count` subjects, half companies and half people, with distinct stems and surnames
/// that are neither vocabulary words, given names nor dictionary aliases.
fn subjects(count: usize, reserved: &HashSet<String>, rng: &mut Rng) -> Vec<Subject> {
    let mut used: HashSet<String> = HashSet::new();
    let mut fresh = |rng: &mut Rng, ending: bool| loop {
        let mut name = made_up_stem(rng);
        if ending {
            name.push_str(rng.pick(SURNAME_ENDINGS));
        }
        let lower = name.to_lowercase();
        if (5..=12).contains(&name.len()) && !reserved.contains(&lower) && used.insert(lower) {
            return name;
        }
    };
    (0..count)
        .map(|i| {
            if i % 2 == 0 {
                let stem = fresh(rng, false);
                let full = format!("{stem} {}", rng.pick(COMPANY_SUFFIXES));
                Subject::Company { stem, full }
            } else {
                let surname = fresh(rng, true);
                Subject::Person {
                    given: rng.pick(GIVEN_NAMES).to_string(),
                    surname,
                }
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Topics: monitoring rules over subjects, in the shapes users write.

fn topic_query(subject: &Subject, shape: usize) -> String {
    match subject {
        Subject::Company { stem, full } => {
            let prefix = stem.to_lowercase();
            match shape % 5 {
                0 => format!(
                    "(\"{full}\" OR {prefix}*) AND (contract* OR lawsuit OR merger OR ceasefire OR @ukraine)"
                ),
                1 => format!(
                    "title:{prefix}* OR (\"{full}\" AND (earnings OR profit* OR revenue*))"
                ),
                2 => format!("\"{full}\" NOT (sport OR football)"),
                3 => format!("\"{full}\" NEAR/15 (acquisition* OR takeover OR merger OR stake)"),
                _ => format!("({prefix}* AND (recall* OR probe OR fine*)) OR title:\"{full}\""),
            }
        }
        Subject::Person { given, surname } => match shape % 4 {
            0 => format!("\"{given} {surname}\" NEAR/10 (resign* OR arrest*)"),
            1 => format!("(\"{given} {surname}\" OR title:{surname}) AND NOT title:opinion"),
            2 => format!("{surname} AND (minister OR chief OR @putin OR @kremlin OR sanction*)"),
            _ => format!("\"{given} {surname}\" (interview OR speech OR elect*)"),
        },
    }
}

fn topic(id: String, query_text: String, min_score: f64) -> Topic {
    let query = query::parse(&query_text)
        .unwrap_or_else(|err| panic!("generated query {query_text:?}: {err}"));
    Topic {
        name: id.clone(),
        id,
        query_text,
        query,
        min_score,
        sinks: vec!["log".to_string()],
        updates: None,
        backfill: None,
    }
}

/// The topic over subject `tracked[i]`, for every i: the topic sets are prefixes of this.
fn all_topics(subjects: &[Subject], tracked: &[usize], entities: &[Entity]) -> Vec<Topic> {
    let ids: HashSet<&str> = entities.iter().map(|e| e.id.as_str()).collect();
    tracked
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            // A quarter of the rules ask for more than a passing mention.
            let min_score = if i % 4 == 3 { 2.0 } else { 0.0 };
            let t = topic(
                format!("subject-{i}"),
                topic_query(&subjects[s], i),
                min_score,
            );
            for (id, _) in entity_refs(&t.query) {
                assert!(ids.contains(id), "unknown entity @{id} in {}", t.query_text);
            }
            t
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Corpus: feed items with an HTML body.

struct Item {
    title: String,
    body_html: String,
}

/// What a language gives an item: its words, how it names entities, its ceasefire
/// phrases, the words news puts next to a subject, and a few stock lines.
struct Language<'a> {
    words: Vec<&'a str>,
    zipf: Zipf,
    /// Plain (not prefix) aliases or inflected forms, per entity; empty for an entity
    /// the language's items do not name.
    aliases: Vec<Vec<&'a str>>,
    /// Entities (by number) that items name most, with forms in this language.
    frequent: Vec<usize>,
    ceasefire: &'static [&'static str],
    events: &'static [&'static str],
    advert: &'static str,
    credit: &'static str,
    opinion: &'static str,
}

impl<'a> Language<'a> {
    fn new(vocabulary: &'a str, aliases: Vec<Vec<&'a str>>, frequent: Vec<usize>) -> Language<'a> {
        let mut words: Vec<&str> = Vec::new();
        let mut seen = HashSet::new();
        for w in vocabulary.split_whitespace() {
            if seen.insert(w) {
                words.push(w);
            }
        }
        Language {
            zipf: Zipf::new(words.len(), 1.0),
            words,
            aliases,
            frequent,
            ceasefire: CEASEFIRE_PHRASES,
            events: EVENT_WORDS,
            advert: "Advertisement",
            credit: "Reporting by Jane Doe; Editing by John Roe",
            opinion: "Opinion",
        }
    }
}

/// Which [`Generator::languages`] an item is written in.
#[derive(Clone, Copy)]
enum Lang {
    English = 0,
    Russian = 1,
    Ukrainian = 2,
}

struct Generator<'a> {
    subjects: &'a [Subject],
    languages: [Language<'a>; 3],
}

/// Something to say in a sentence: a name, maybe with an event word close after it.
struct Mention {
    text: String,
    event: Option<&'static str>,
    link: bool,
}

impl<'a> Generator<'a> {
    fn word(&self, lang: Lang, rng: &mut Rng) -> &'a str {
        let l = &self.languages[lang as usize];
        l.words[l.zipf.sample(rng)]
    }

    fn entity_alias(&self, lang: Lang, entity: usize, rng: &mut Rng) -> String {
        let aliases = &self.languages[lang as usize].aliases[entity];
        // The first alias is usually the common name.
        if rng.chance(0.6) {
            aliases[0].to_string()
        } else {
            rng.pick(aliases).to_string()
        }
    }

    fn pick_entity(&self, lang: Lang, rng: &mut Rng) -> usize {
        let l = &self.languages[lang as usize];
        loop {
            let e = if rng.chance(0.5) {
                l.frequent[rng.below(l.frequent.len())]
            } else {
                rng.below(l.aliases.len())
            };
            if !l.aliases[e].is_empty() {
                return e;
            }
        }
    }

    fn sentence(&self, lang: Lang, rng: &mut Rng, mentions: Vec<Mention>) -> String {
        let len = rng.range(8, 26);
        let mut tokens: Vec<String> = (0..len).map(|_| self.word(lang, rng).to_string()).collect();
        if rng.chance(0.04) {
            // "research &amp; development": the entity decodes to `&`.
            let at = rng.below(tokens.len());
            tokens[at] = format!("{} &amp; {}", self.word(lang, rng), self.word(lang, rng));
        }
        for m in mentions {
            let at = rng.below(tokens.len() + 1);
            let text = if m.link {
                format!(
                    "<a href=\"https://news.example/topic/{}\">{}</a>",
                    at, m.text
                )
            } else {
                m.text
            };
            tokens.insert(at, text);
            if let Some(event) = m.event {
                let near = (at + rng.range(1, 4)).min(tokens.len());
                tokens.insert(near, event.to_string());
            }
        }
        let last = tokens.len() - 1;
        for t in tokens.iter_mut().take(last) {
            if rng.chance(0.06) {
                t.push(',');
            }
        }
        tokens[0] = capitalise(&tokens[0]);
        let mut s = tokens.join(" ");
        s.push(if rng.chance(0.03) { '?' } else { '.' });
        s
    }

    fn item(&self, lang: Lang, rng: &mut Rng) -> Item {
        let l = &self.languages[lang as usize];
        let ceasefire = rng.chance(CEASEFIRE_SHARE);
        let subject_count = match rng.below(10) {
            0..=3 => 1,
            4..=6 => 2,
            7..=8 => 3,
            _ => 4,
        };
        let subjects: Vec<&Subject> = (0..subject_count)
            .map(|_| &self.subjects[rng.below(self.subjects.len())])
            .collect();
        let mut entities: Vec<usize> = (0..rng.range(1, 4))
            .map(|_| self.pick_entity(lang, rng))
            .collect();
        if ceasefire && rng.chance(0.8) {
            entities.push(l.frequent[rng.below(CEASEFIRE_ENTITIES.len())]);
        }

        // Body: sentences, then mentions spread over them.
        let target_words = rng.range(150, 600);
        let sentences = (target_words / 17).max(4);
        let mut placed: Vec<Vec<Mention>> = (0..sentences).map(|_| Vec::new()).collect();
        for (n, subject) in subjects.iter().enumerate() {
            // The main subject comes early and often; the others in passing.
            let times = if n == 0 {
                rng.range(2, 5)
            } else {
                rng.range(1, 3)
            };
            for k in 0..times {
                let at = if k == 0 && n == 0 {
                    rng.below(2)
                } else {
                    rng.below(sentences)
                };
                let text = if k == 0 {
                    subject.full()
                } else {
                    subject.later_mention(rng)
                };
                placed[at].push(Mention {
                    text,
                    event: rng.chance(0.6).then(|| rng.pick(l.events)),
                    link: k == 0 && rng.chance(0.25),
                });
            }
        }
        for &e in &entities {
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(sentences);
                let text = self.entity_alias(lang, e, rng);
                placed[at].push(Mention {
                    text,
                    event: None,
                    link: false,
                });
            }
        }
        if ceasefire {
            for _ in 0..rng.range(1, 3) {
                let at = rng.below(sentences);
                placed[at].push(Mention {
                    text: rng.pick(l.ceasefire).to_string(),
                    event: None,
                    link: false,
                });
            }
        }

        let mut body = String::new();
        let mut in_paragraph = 0;
        let mut paragraph_len = rng.range(1, 4);
        for (i, mentions) in placed.into_iter().enumerate() {
            if in_paragraph == 0 {
                body.push_str("<p>");
            } else {
                body.push(' ');
            }
            body.push_str(&self.sentence(lang, rng, mentions));
            in_paragraph += 1;
            if in_paragraph >= paragraph_len || i + 1 == sentences {
                body.push_str("</p>\n");
                in_paragraph = 0;
                paragraph_len = rng.range(1, 4);
                if rng.chance(0.03) {
                    body.push_str(&format!("<p>{}</p>\n", l.advert));
                }
            }
        }
        if rng.chance(0.3) {
            body.push_str(&format!("<p>{}</p>\n", l.credit));
        }

        // Title: sentence case, usually naming the main subject.
        let mut title: Vec<String> = (0..rng.range(5, 10))
            .map(|_| self.word(lang, rng).to_string())
            .collect();
        if rng.chance(0.7) {
            let name = if rng.chance(0.5) {
                subjects[0].full()
            } else {
                subjects[0].later_mention(rng)
            };
            let at = rng.below(3).min(title.len());
            title.insert(at, name);
            if rng.chance(0.5) {
                title.insert(at + 1, rng.pick(l.events).to_string());
            }
        }
        if ceasefire && rng.chance(0.5) {
            let at = rng.below(title.len() + 1);
            title.insert(at, rng.pick(l.ceasefire).to_string());
            let e = self.entity_alias(lang, *entities.last().unwrap(), rng);
            title.insert(0, e);
        }
        let mut title = title.join(" ");
        title = capitalise(&title);
        if rng.chance(0.03) {
            title = format!("{}: {title}", l.opinion);
        }
        Item {
            title,
            body_html: body,
        }
    }
}

// ---------------------------------------------------------------------------
// Setup and benchmarks.

struct Setup {
    config: Config,
    /// English items.
    corpus: Vec<Item>,
    /// The corpus already cleaned, for timing the rule matching alone.
    cleaned: Vec<Article>,
    /// Items of which two in five are Russian or Ukrainian, the rest English.
    mixed: Vec<Item>,
    /// The ceasefire-talks topic, then topic i over subject i, for i up to the largest N.
    topics: Vec<Topic>,
}

fn setup() -> Setup {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/newswatch.toml");
    let text = std::fs::read_to_string(&path).expect("read config/newswatch.toml");
    let config = config::parse_str(&text, &path).expect("valid shipped config");
    let ceasefire = config
        .topics
        .iter()
        .find(|t| t.id == "ceasefire-talks")
        .expect("the shipped config has ceasefire-talks")
        .clone();

    // Names must not be vocabulary words, given names or words of an alias.
    let english_words: Vec<&str> = Language::new(VOCABULARY, Vec::new(), Vec::new()).words;
    let mut reserved: HashSet<String> = english_words.iter().map(|w| w.to_string()).collect();
    reserved.extend(GIVEN_NAMES.iter().map(|g| g.to_lowercase()));
    reserved.extend(COMPANY_SUFFIXES.iter().map(|s| s.to_lowercase()));
    for e in &config.entities {
        for a in &e.aliases {
            reserved.extend(
                a.trim_end_matches('*')
                    .split_whitespace()
                    .map(str::to_lowercase),
            );
        }
    }

    let mut rng = Rng(SEED);
    let subjects = subjects(SUBJECTS, &reserved, &mut rng);
    let mut tracked: Vec<usize> = (0..SUBJECTS).collect();
    rng.shuffle(&mut tracked);
    tracked.truncate(TOPIC_COUNTS[TOPIC_COUNTS.len() - 1]);

    let parse_start = Instant::now();
    let mut topics = vec![ceasefire];
    topics.extend(all_topics(&subjects, &tracked, &config.entities));
    let parse_time = parse_start.elapsed();

    let entity_index: HashMap<&str, usize> = config
        .entities
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let frequent = |aliases: &[Vec<&str>]| -> Vec<usize> {
        let list: Vec<usize> = FREQUENT_ENTITIES
            .iter()
            .map(|id| entity_index[id])
            .filter(|&e| !aliases[e].is_empty())
            .collect();
        let ceasefire: Vec<usize> = CEASEFIRE_ENTITIES
            .iter()
            .map(|id| entity_index[id])
            .collect();
        assert_eq!(
            list[..ceasefire.len()],
            ceasefire[..],
            "ceasefire entities first"
        );
        list
    };
    let english_aliases: Vec<Vec<&str>> = config
        .entities
        .iter()
        .map(|e| {
            e.aliases
                .iter()
                .map(String::as_str)
                .filter(|a| !a.ends_with('*') && a.is_ascii())
                .collect()
        })
        .collect();
    let english = Language::new(
        VOCABULARY,
        english_aliases.clone(),
        frequent(&english_aliases),
    );
    let cyrillic = |vocabulary: &'static str, russian: bool| {
        let mut aliases: Vec<Vec<&str>> = vec![Vec::new(); config.entities.len()];
        for (id, ru, uk) in CYRILLIC_ENTITIES {
            let e = *entity_index
                .get(id)
                .unwrap_or_else(|| panic!("the shipped config has no entity {id}"));
            aliases[e] = if russian { ru.to_vec() } else { uk.to_vec() };
        }
        let frequent = frequent(&aliases);
        let mut language = Language::new(vocabulary, aliases, frequent);
        if russian {
            language.ceasefire = CEASEFIRE_RUSSIAN;
            language.events = EVENTS_RUSSIAN;
            language.advert = "Реклама";
            language.credit = "Редактор Иван Петров";
            language.opinion = "Мнение";
        } else {
            language.ceasefire = CEASEFIRE_UKRAINIAN;
            language.events = EVENTS_UKRAINIAN;
            language.advert = "Реклама";
            language.credit = "Редакторка Олена Коваленко";
            language.opinion = "Думка";
        }
        language
    };
    let generator = Generator {
        subjects: &subjects,
        languages: [english, cyrillic(RUSSIAN, true), cyrillic(UKRAINIAN, false)],
    };
    let corpus: Vec<Item> = (0..ITEMS)
        .map(|_| generator.item(Lang::English, &mut rng))
        .collect();
    // The mixed corpus: two items in five in Cyrillic, Russian and Ukrainian in turn.
    let mixed: Vec<Item> = (0..ITEMS)
        .map(|i| {
            let lang = match i % 10 {
                1 | 6 => Lang::Russian,
                3 | 8 => Lang::Ukrainian,
                _ => Lang::English,
            };
            generator.item(lang, &mut rng)
        })
        .collect();

    let cleaner = cleaner(&config);
    let cleaned: Vec<Article> = corpus
        .iter()
        .map(|item| cleaner.clean_item(&item.title, &item.body_html))
        .collect();
    let html_bytes: usize = corpus.iter().map(|i| i.body_html.len()).sum();
    let body_words: usize = cleaned
        .iter()
        .map(|a| a.body.split_whitespace().count())
        .sum();
    eprintln!(
        "corpus: {} items, {} vocabulary words, {} subjects; {:.0} body words and {:.0} HTML bytes per item on average",
        corpus.len(),
        generator.languages[Lang::English as usize].words.len(),
        subjects.len(),
        body_words as f64 / corpus.len() as f64,
        html_bytes as f64 / corpus.len() as f64,
    );
    eprintln!(
        "parsing the {} generated topic queries took {:.1} ms",
        topics.len() - 1,
        parse_time.as_secs_f64() * 1e3
    );
    let mixed_words: usize = mixed
        .iter()
        .map(|i| {
            cleaner
                .clean_item(&i.title, &i.body_html)
                .body
                .split_whitespace()
                .count()
        })
        .sum();
    let mixed_bytes: usize = mixed.iter().map(|i| i.body_html.len()).sum();
    eprintln!(
        "mixed corpus: {} items, 40% Russian or Ukrainian; {:.0} body words and {:.0} HTML bytes per item on average",
        mixed.len(),
        mixed_words as f64 / mixed.len() as f64,
        mixed_bytes as f64 / mixed.len() as f64,
    );
    if std::env::var_os("NEWSWATCH_BENCH_SAMPLE").is_some() {
        // A look at what is measured: items as generated and cleaned, a few topics.
        let samples = corpus.iter().take(2).chain(&mixed[1..4]);
        for item in samples {
            let article = cleaner.clean_item(&item.title, &item.body_html);
            eprintln!("--- item\n{}\n{}", item.title, item.body_html);
            eprintln!("--- cleaned\n{}\n{}", article.title, article.body);
        }
        for t in topics.iter().skip(1).take(12) {
            eprintln!(
                "topic {} (min_score {}): {}",
                t.id, t.min_score, t.query_text
            );
        }
    }
    Setup {
        config,
        corpus,
        cleaned,
        mixed,
        topics,
    }
}

// ---------------------------------------------------------------------------
// Scan against parse: a corpus as `scan` reads it, RSS 2.0 feeds.

/// Items per rendered feed, about what a news site's feed carries.
const FEED_ITEMS: usize = 50;

/// `text` with the XML special characters escaped, as a feed carries HTML in a
/// `<description>`.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The items as RSS 2.0 feeds of [`FEED_ITEMS`] items, HTML bodies escaped.
fn rss_feeds(name: &str, items: &[Item]) -> Vec<String> {
    items
        .chunks(FEED_ITEMS)
        .enumerate()
        .map(|(f, chunk)| {
            let mut feed = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\n\
                 <title>{name} news {f}</title><link>https://news.example/{name}/{f}</link>\n\
                 <description>The latest {name} news</description>\n"
            );
            for (i, item) in chunk.iter().enumerate() {
                let n = f * FEED_ITEMS + i;
                feed.push_str(&format!(
                    "<item><title>{}</title><link>https://news.example/{name}/{n}</link>\
                     <guid isPermaLink=\"false\">{name}-{n}</guid>\
                     <pubDate>Sat, 06 Dec 2026 {:02}:{:02}:00 GMT</pubDate>\n\
                     <description>{}</description></item>\n",
                    xml_escape(&item.title),
                    n / 60 % 24,
                    n % 60,
                    xml_escape(&item.body_html),
                ));
            }
            feed.push_str("</channel></rss>\n");
            feed
        })
        .collect()
}

/// One corpus as feeds, with what `scan` takes from them.
struct Feeds {
    name: &'static str,
    feeds: Vec<String>,
    /// The feeds' items as `scan` reads them (title and HTML body).
    entries: Vec<FeedItem>,
    /// The entries cleaned, and their shingles, for timing the later stages alone.
    cleaned: Vec<Article>,
    shingles: Vec<Vec<u64>>,
}

fn feeds(name: &'static str, items: &[Item], pipeline: &Pipeline, cleaner: &Cleaner) -> Feeds {
    let feeds = rss_feeds(name, items);
    let mut entries = Vec::new();
    for feed in &feeds {
        match newswatch::parse::parse(feed).expect("generated feeds parse") {
            Parsed::Feed(items) => entries.extend(items),
            _ => panic!("a generated feed was not read as a feed"),
        }
    }
    assert_eq!(
        entries.len(),
        items.len(),
        "every generated item is read back"
    );
    let cleaned: Vec<Article> = entries
        .iter()
        .map(|e| cleaner.clean_item(&e.title, &e.body))
        .collect();
    let shingles = entries
        .iter()
        .map(|e| pipeline.process_item(&e.title, &e.body).shingles)
        .collect();
    let bytes: usize = feeds.iter().map(String::len).sum();
    eprintln!(
        "{name} feeds: {} feeds of up to {FEED_ITEMS} items, {:.0} bytes of XML per item",
        feeds.len(),
        bytes as f64 / entries.len() as f64
    );
    Feeds {
        name,
        feeds,
        entries,
        cleaned,
        shingles,
    }
}

/// What a timed loop spent, summed over every call criterion made (warm-up included),
/// to print ratios measured in the same run.
#[derive(Default)]
struct Spent {
    time: Cell<Duration>,
    loops: Cell<u64>,
}

impl Spent {
    /// Times `iters` runs of `f` for criterion and adds them up.
    fn time(&self, iters: u64, mut f: impl FnMut()) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        let spent = start.elapsed();
        self.time.set(self.time.get() + spent);
        self.loops.set(self.loops.get() + iters);
        spent
    }

    /// Mean microseconds per item, for loops over `items` items; `None` if not run.
    fn per_item(&self, items: usize) -> Option<f64> {
        let loops = self.loops.get();
        (loops > 0).then(|| self.time.get().as_secs_f64() * 1e6 / (loops * items as u64) as f64)
    }
}

fn cleaner(config: &Config) -> Cleaner {
    Cleaner::new(
        config.cleaning.split_on.clone(),
        config.cleaning.drop_lines.clone(),
    )
}

/// The rule set of the shipped entities with the ceasefire topic and `n` subject topics.
fn rules(setup: &Setup, n: usize) -> RuleSet {
    RuleSet::new(
        setup.config.entities.clone(),
        setup.topics[..n + 1].to_vec(),
    )
}

/// Prints how much the rules find in the corpus, so it is clear topics are being hit.
fn report_matches(n: usize, rules: &RuleSet, cleaned: &[Article]) {
    let mut topics = 0usize;
    let mut items_with_topic = 0usize;
    let mut ceasefire = 0usize;
    let mut entities = 0usize;
    for a in cleaned {
        let f = rules.analyze(&a.title, &a.body);
        topics += f.topics.len();
        items_with_topic += usize::from(!f.topics.is_empty());
        ceasefire += f
            .topics
            .iter()
            .filter(|t| t.id == "ceasefire-talks")
            .count();
        entities += f.entities.len();
    }
    let items = cleaned.len() as f64;
    eprintln!(
        "N = {n:>5}: {:>5} topics, {:>6} patterns; per item {:.3} topics matched \
         ({:.1}% of items match one or more; ceasefire-talks matches {:.1}%), {:.2} entities",
        n + 1,
        rules.pattern_count(),
        topics as f64 / items,
        100.0 * items_with_topic as f64 / items,
        100.0 * ceasefire as f64 / items,
        entities as f64 / items,
    );
}

fn benches(c: &mut Criterion) {
    let setup = setup();
    let largest = TOPIC_COUNTS[TOPIC_COUNTS.len() - 1];

    let start = Instant::now();
    let built = rules(&setup, largest);
    eprintln!(
        "building the rule set with {} topics took {:.1} ms (entities and topics cloned in)",
        largest + 1,
        start.elapsed().as_secs_f64() * 1e3
    );
    drop(built);

    let mut pipelines = Vec::new();
    for &n in &TOPIC_COUNTS {
        let start = Instant::now();
        let rules = rules(&setup, n);
        eprintln!(
            "N = {n:>5}: rule set built in {:.1} ms, automaton {:.1} MB",
            start.elapsed().as_secs_f64() * 1e3,
            rules.automaton_bytes() as f64 / 1e6
        );
        report_matches(n, &rules, &setup.cleaned);
        pipelines.push((n, Pipeline::new(cleaner(&setup.config), rules)));
    }

    let items = setup.corpus.len() as u64;
    // Criterion's own --measurement-time does not override a group's; this does.
    let quick: Option<u64> = std::env::var("NEWSWATCH_BENCH_SECONDS").ok().map(|s| {
        s.parse()
            .expect("NEWSWATCH_BENCH_SECONDS is a whole number of seconds")
    });
    // One iteration is the whole corpus (half a second or more), so samples are flat:
    // ten samples of one iteration each.
    let configure = |group: &mut criterion::BenchmarkGroup<_>, seconds: u64| {
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(quick.unwrap_or(seconds)))
            .throughput(Throughput::Elements(items));
    };

    // Scan against parse (issue 12): per item, bare feed-rs parsing of RSS feeds against
    // what is done with each parsed item, as `scan` and the daemon do it, with the
    // shipped config's entities and topics: clean, match form, entities, topics and
    // shingles (`process_item`), then the story fingerprint and sketch.
    let shipped = Pipeline::new(
        cleaner(&setup.config),
        RuleSet::new(setup.config.entities.clone(), setup.config.topics.clone()),
    );
    let plain_cleaner = cleaner(&setup.config);
    let corpora = [
        feeds("english", &setup.corpus, &shipped, &plain_cleaner),
        feeds("mixed", &setup.mixed, &shipped, &plain_cleaner),
    ];
    const STAGES: [&str; 5] = ["parse", "pipeline", "clean", "analyze", "fingerprint"];
    let spent: Vec<[Spent; 5]> = corpora.iter().map(|_| Default::default()).collect();
    let mut group = c.benchmark_group("scan_vs_parse");
    configure(&mut group, 4);
    for (corpus, spent) in corpora.iter().zip(&spent) {
        let id = |stage: usize| BenchmarkId::new(STAGES[stage], corpus.name);
        group.bench_function(id(0), |b| {
            b.iter_custom(|iters| {
                spent[0].time(iters, || {
                    for feed in &corpus.feeds {
                        black_box(feed_rs::parser::parse(black_box(feed.as_bytes())).unwrap());
                    }
                })
            })
        });
        group.bench_function(id(1), |b| {
            b.iter_custom(|iters| {
                spent[1].time(iters, || {
                    for e in &corpus.entries {
                        let p = shipped.process_item(black_box(&e.title), black_box(&e.body));
                        let fingerprint = dedup::simhash(&p.shingles);
                        let sketch = dedup::sketch(&p.shingles);
                        black_box((p, fingerprint, sketch));
                    }
                })
            })
        });
        group.bench_function(id(2), |b| {
            b.iter_custom(|iters| {
                spent[2].time(iters, || {
                    for e in &corpus.entries {
                        black_box(
                            plain_cleaner.clean_item(black_box(&e.title), black_box(&e.body)),
                        );
                    }
                })
            })
        });
        group.bench_function(id(3), |b| {
            b.iter_custom(|iters| {
                spent[3].time(iters, || {
                    for a in &corpus.cleaned {
                        // The clone (two short strings) is part of the figure.
                        black_box(shipped.analyze(black_box(a.clone())));
                    }
                })
            })
        });
        group.bench_function(id(4), |b| {
            b.iter_custom(|iters| {
                spent[4].time(iters, || {
                    for s in &corpus.shingles {
                        black_box((dedup::simhash(black_box(s)), dedup::sketch(s)));
                    }
                })
            })
        });
    }
    group.finish();
    for (corpus, spent) in corpora.iter().zip(&spent) {
        let per_item: Vec<Option<f64>> = spent
            .iter()
            .map(|s| s.per_item(corpus.entries.len()))
            .collect();
        let show = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1} µs"));
        let ratio = |v: Option<f64>| match (v, per_item[0]) {
            (Some(v), Some(parse)) => format!(" ({:.2}× parse)", v / parse),
            _ => String::new(),
        };
        eprintln!(
            "scan_vs_parse {}: parse {} an item; pipeline {}{}; parts: clean {}{}, analyze {}{}, fingerprint {}{}",
            corpus.name,
            show(per_item[0]),
            show(per_item[1]),
            ratio(per_item[1]),
            show(per_item[2]),
            ratio(per_item[2]),
            show(per_item[3]),
            ratio(per_item[3]),
            show(per_item[4]),
            ratio(per_item[4]),
        );
    }

    // The full pipeline: clean + entities + topics, per feed item.
    let mut group = c.benchmark_group("pipeline");
    configure(&mut group, 10);
    let by_topics: Vec<Spent> = pipelines.iter().map(|_| Spent::default()).collect();
    for ((n, pipeline), spent) in pipelines.iter().zip(&by_topics) {
        group.bench_with_input(BenchmarkId::new("process_item", n), pipeline, |b, p| {
            b.iter_custom(|iters| {
                spent.time(iters, || {
                    for item in &setup.corpus {
                        black_box(
                            p.process_item(black_box(&item.title), black_box(&item.body_html)),
                        );
                    }
                })
            })
        });
    }
    group.finish();
    let per_item: Vec<Option<f64>> = by_topics
        .iter()
        .map(|s| s.per_item(setup.corpus.len()))
        .collect();
    if let (Some(fewest), Some(most)) = (per_item[0], per_item[per_item.len() - 1]) {
        eprintln!(
            "pipeline: {} topics at {:.1} µs an item, {} topics at {:.1} µs: throughput {:.0}% of the {}-topic one",
            TOPIC_COUNTS[TOPIC_COUNTS.len() - 1],
            most,
            TOPIC_COUNTS[0],
            fewest,
            100.0 * fewest / most,
            TOPIC_COUNTS[0],
        );
    }

    // The parts, so that what the number of topics costs is seen apart from the rest:
    // cleaning and folding the text do not depend on the topics; `analyze` (folding,
    // one scan, entities, topic evaluation) does.
    let mut group = c.benchmark_group("parts");
    configure(&mut group, 6);
    let cleaner = cleaner(&setup.config);
    group.bench_function("clean_item", |b| {
        b.iter(|| {
            for item in &setup.corpus {
                black_box(cleaner.clean_item(black_box(&item.title), black_box(&item.body_html)));
            }
        })
    });
    group.bench_function("match_text", |b| {
        b.iter(|| {
            for a in &setup.cleaned {
                black_box(MatchText::new(black_box(&a.title), black_box(&a.body)));
            }
        })
    });
    for (n, pipeline) in pipelines.iter().filter(|(n, _)| *n != 1_000) {
        group.bench_with_input(
            BenchmarkId::new("analyze", n),
            pipeline.rules(),
            |b, rules| {
                b.iter(|| {
                    for a in &setup.cleaned {
                        black_box(rules.analyze(black_box(&a.title), black_box(&a.body)));
                    }
                })
            },
        );
    }
    group.finish();

    // One large plain-text file as `scan` reads it: 50 MB of articles between
    // separator lines, with typographic quotes, dashes, no-break spaces, CRLF, Cyrillic
    // and a menu after each.
    let paragraph = "Officials said on Tuesday that the \u{201C}talks\u{201D} \u{2014} the third \
                     round \u{2014} would continue.\u{00A0}Мэр города сообщил, что мост откроют.\r\n";
    let mut document = String::new();
    while document.len() < 50_000_000 {
        document.push_str("Headline of a story\n");
        for _ in 0..20 {
            document.push_str(paragraph);
        }
        document.push_str("=====\n- Home\n- News\n- Sport\n");
    }
    let articles = cleaner.clean_document(&document, false).len();
    assert!(
        articles > 1_000,
        "the 50 MB document gave {articles} articles"
    );
    eprintln!(
        "large document: {} bytes -> {articles} articles",
        document.len()
    );
    let mut group = c.benchmark_group("large_document");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(30))
        .throughput(Throughput::Bytes(document.len() as u64));
    group.bench_function("clean_document_50mb", |b| {
        b.iter(|| black_box(cleaner.clean_document(black_box(&document), false)))
    });
    // What `scan` does with one large file: the pieces cleaned on every core.
    let cores = newswatch::par::cores();
    group.bench_function(format!("clean_document_50mb_on_{cores}_threads"), |b| {
        b.iter(|| black_box(cleaner.clean_document_on(black_box(&document), false, cores)))
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
