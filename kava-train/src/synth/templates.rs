//! The frame table and the money frames: shopping, bake sales, saving, wages, splitting a bill and
//! fuel costs. A frame draws its numbers so every step stays a small non-negative integer, then
//! writes the question and one trace sentence per step (`@` marks where the computation goes).

use super::words::{a, person, Person};
use super::{counting, sharing};
use super::{Draft, Ex, Problem, Rng};

type Frame = fn(&mut Rng) -> Problem;

/// Every frame by name. `build` picks one uniformly, so all of them show up in any sizable set.
pub(crate) const FRAMES: &[(&str, Frame)] = &[
    ("shopping", shopping),
    ("bake_sale", bake_sale),
    ("saving", saving),
    ("wages", wages),
    ("split_bill", split_bill),
    ("fuel", fuel),
    ("travel", counting::travel),
    ("reading", counting::reading),
    ("garden", counting::garden),
    ("classroom", counting::classroom),
    ("recipe", counting::recipe),
    ("collecting", counting::collecting),
    ("boxes", sharing::boxes),
    ("party", sharing::party),
    ("farm", sharing::farm),
    ("fruit_picking", sharing::fruit_picking),
];

pub(crate) fn build(rng: &mut Rng) -> Problem {
    let &(name, frame) = rng.pick(FRAMES);
    Problem { frame: name, ..frame(rng) }
}

/// Items on sale: singular, plural, and the price range in dollars.
const SHOP: &[(&str, &str, i64, i64)] = &[
    ("notebook", "notebooks", 2, 6),
    ("pen", "pens", 1, 4),
    ("sandwich", "sandwiches", 4, 9),
    ("T-shirt", "T-shirts", 8, 15),
    ("toy car", "toy cars", 3, 8),
    ("comic book", "comic books", 3, 7),
    ("bottle of juice", "bottles of juice", 2, 4),
    ("bag of chips", "bags of chips", 2, 4),
    ("pair of socks", "pairs of socks", 3, 6),
    ("mug", "mugs", 4, 10),
    ("ice cream cone", "ice cream cones", 2, 5),
    ("puzzle", "puzzles", 6, 12),
    ("eraser", "erasers", 1, 3),
    ("umbrella", "umbrellas", 7, 14),
];

/// The smallest usual way to pay more than `total`: one bill, or a round amount.
fn payment(total: i64) -> (i64, String) {
    match [10, 20, 50, 100].into_iter().find(|&b| b > total) {
        Some(bill) => (bill, format!("a ${bill} bill")),
        None => {
            let amount = (total / 50 + 1) * 50;
            (amount, format!("${amount}"))
        }
    }
}

fn shopping(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let ((_, pl1, lo1, hi1), (_, pl2, lo2, hi2)) = rng.pick_two(SHOP);
    let (q1, p1) = (rng.range(2, 6), rng.range(*lo1, *hi1));
    let mut d = Draft::new();
    let c1 = d.money(&format!("{n} buys {q1} {pl1} at ${p1} each, so they cost @."), Ex::mul(q1, p1));
    if rng.chance(1, 3) {
        let (paid, how) = payment(c1);
        d.money(&format!("{hc} pays ${paid}, so {he} gets @ in change."), Ex::sub(paid, c1));
        let q = format!("{n} buys {q1} {pl1} for ${p1} each. {hc} pays with {how}. How much change does {he} get?");
        return d.finish(q);
    }
    let (q2, p2) = (rng.range(2, 5), rng.range(*lo2, *hi2));
    let c2 = d.money(&format!("The {q2} {pl2} cost @."), Ex::mul(q2, p2));
    let mut total = d.money(&format!("Together {he} spends @."), Ex::add(c1, c2));
    let mut coupon_text = String::new();
    if rng.chance(1, 2) {
        let coupon = rng.range(2, (total / 3).max(2));
        total = d.money(&format!("With the ${coupon} coupon, {he} pays @."), Ex::sub(total, coupon));
        coupon_text = format!(" {hc} has a coupon for ${coupon} off.");
    }
    let (paid, how) = payment(total);
    d.money(&format!("{hc} pays with ${paid}, so {he} gets @ back."), Ex::sub(paid, total));
    let q = format!(
        "{n} buys {q1} {pl1} at ${p1} each and {q2} {pl2} at ${p2} each.{coupon_text} \
         If {he} pays with {how}, how much change does {he} get back?"
    );
    d.finish(q)
}

/// Baked goods: the container, the goods.
const BAKED: &[(&str, &str)] = &[
    ("trays", "muffins"),
    ("batches", "cookies"),
    ("trays", "cupcakes"),
    ("pans", "brownies"),
    ("batches", "scones"),
    ("trays", "cinnamon rolls"),
    ("batches", "oatmeal bars"),
];

fn bake_sale(rng: &mut Rng) -> Problem {
    let Person { name: n, he, him, his, he_cap: hc, his_cap: hisc } = person(rng);
    let &(tray, goods) = rng.pick(BAKED);
    let (t, m, price) = (rng.range(2, 6), rng.range(6, 12), rng.range(2, 5));
    let mut d = Draft::new();
    let baked = d.count(&format!("{n} bakes {t} {tray} of {m} {goods}, so {he} has @ {goods}."), Ex::mul(t, m));
    if rng.chance(1, 4) {
        d.money(&format!("{hc} sells each one for ${price}, so {he} makes @."), Ex::mul(baked, price));
        let q = format!(
            "{n} bakes {t} {tray} of {goods} with {m} in each. {hc} sells all of them for ${price} each. \
             How much money does {he} make?"
        );
        return d.finish(q);
    }
    let given = rng.range(2, baked / 3);
    let who = *rng.pick(&["neighbors", "friends", "grandparents", "teammates"]);
    let left = d.count(&format!("After giving {given} away, {he} has @ {goods} left to sell."), Ex::sub(baked, given));
    let revenue = d.money(&format!("{hc} sells them for ${price} each, so {he} makes @."), Ex::mul(left, price));
    let mut q = format!(
        "{n} bakes {t} {tray} of {m} {goods} for a bake sale. {hc} gives {given} {goods} to {his} {who} \
         and sells the rest for ${price} each."
    );
    if rng.chance(1, 2) {
        let cost = rng.range_by(5, (revenue - 5) / 5 * 5, 5);
        d.money(&format!("{hisc} ingredients cost ${cost}, so {his} profit is @."), Ex::sub(revenue, cost));
        q += &format!(" The ingredients cost {him} ${cost}. How much profit does {he} make?");
    } else {
        q += &format!(" How much money does {he} make?");
    }
    d.finish(q)
}

const WISHES: &[&str] =
    &["bike", "video game", "guitar", "skateboard", "telescope", "tablet", "keyboard", "tent", "art set", "umbrella"];

fn saving(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let item = *rng.pick(WISHES);
    let (have, weeks) = (rng.range(5, 40), rng.range(3, 10));
    let mut d = Draft::new();
    let (weekly_text, weekly) = if rng.chance(1, 2) {
        let (earn, spend) = (rng.range(8, 20), rng.range(2, 6));
        let kept = d.money(&format!("Each week {he} keeps @."), Ex::sub(earn, spend));
        (format!("Every week {he} earns ${earn} doing chores and spends ${spend} of it on snacks."), kept)
    } else {
        let w = rng.range(5, 15);
        (format!("{hc} saves ${w} every week."), w)
    };
    let saved = d.money(&format!("In {weeks} weeks {he} saves @."), Ex::mul(weekly, weeks));
    let total = d.money(&format!("With the ${have} {he} already has, {he} has @."), Ex::add(have, saved));
    // Price near what they will have, so both "still needs" and "has left" questions come up.
    let mut price = (total + rng.range(-30, 40)).max(10) / 5 * 5;
    if price == total {
        price += 5;
    }
    let ask = if price > total {
        d.money(&format!("The {item} costs ${price}, so {he} still needs @."), Ex::sub(price, total));
        format!("After {weeks} weeks, how much more money does {he} need?")
    } else {
        d.money(&format!("After paying ${price} for the {item}, {he} has @ left."), Ex::sub(total, price));
        format!("If {he} buys the {item} after {weeks} weeks, how much money will {he} have left?")
    };
    let q = format!("{n} is saving for {} that costs ${price}. {hc} already has ${have}. {weekly_text} {ask}", a(item));
    d.finish(q)
}

const JOBS: &[&str] = &[
    "babysitting",
    "walking dogs",
    "tutoring math",
    "working at a bookstore",
    "washing cars",
    "working at a cafe",
    "mowing lawns",
    "helping at a bakery",
];

fn wages(rng: &mut Rng) -> Problem {
    let Person { name: n, he, he_cap: hc, .. } = person(rng);
    let job = *rng.pick(JOBS);
    let (rate, hours, days) = (rng.range(8, 20), rng.range(2, 8), rng.range(2, 6));
    let mut d = Draft::new();
    let worked =
        d.count(&format!("{n} works {hours} hours a day for {days} days, which is @ hours."), Ex::mul(hours, days));
    let earned = d.money(&format!("At ${rate} an hour, {he} earns @."), Ex::mul(worked, rate));
    let mut q = format!("{n} earns ${rate} an hour {job}. {hc} works {hours} hours a day for {days} days.");
    if rng.chance(1, 2) {
        let tips = rng.range(5, 30);
        let thing = *rng.pick(&["new shoes", "a jacket", "concert tickets", "a backpack", "books"]);
        let with_tips = d.money(&format!("With ${tips} in tips, {he} has @."), Ex::add(earned, tips));
        let spent = rng.range(10, with_tips * 2 / 3);
        d.money(&format!("After spending ${spent} on {thing}, {he} has @ left."), Ex::sub(with_tips, spent));
        q += &format!(
            " {hc} also gets ${tips} in tips and then spends ${spent} on {thing}. How much money does {he} have left?"
        );
    } else {
        q += &format!(" How much money does {he} earn?");
    }
    d.finish(q)
}

const PLACES: &[&str] =
    &["a pizza place", "a diner", "a taco stand", "a noodle shop", "a burger restaurant", "a sushi bar"];

fn split_bill(rng: &mut Rng) -> Problem {
    let Person { name: n, .. } = person(rng);
    let place = *rng.pick(PLACES);
    let (people, meal) = (rng.range(3, 6), rng.range(7, 16));
    let friends = people - 1;
    let mut d = Draft::new();
    let meals = d.money(&format!("The {people} meals at ${meal} each cost @."), Ex::mul(people, meal));
    let (extras_text, total) = if rng.chance(1, 2) {
        let (count, each) = (rng.range(2, 4), rng.range(3, 7));
        let desserts = d.money(&format!("The {count} desserts cost @."), Ex::mul(count, each));
        // The tip makes desserts + tip divisible by the number of people, so shares are whole.
        let tip = (people - desserts % people) % people + people * rng.range(1, 3);
        let total = d.money(&format!("With the ${tip} tip, the bill is @."), Ex::sum(&[meals, desserts, tip]));
        (format!(" They also share {count} desserts that cost ${each} each and leave a tip of ${tip}."), total)
    } else {
        let tip = people * rng.range(2, 4);
        let total = d.money(&format!("With the ${tip} tip, the bill is @."), Ex::add(meals, tip));
        (format!(" They leave a tip of ${tip}."), total)
    };
    d.money(&format!("Split {people} ways, each person pays @."), Ex::div(total, people));
    let q = format!(
        "{n} and {friends} friends go to {place} for dinner. Each of them orders a meal that costs ${meal}.\
         {extras_text} If they split the bill equally, how much does each person pay?"
    );
    d.finish(q)
}

const RELATIVES: &[&str] = &["grandmother", "grandfather", "aunt", "uncle", "cousin", "best friend"];

fn fuel(rng: &mut Rng) -> Problem {
    let Person { name: n, he, his, he_cap: hc, .. } = person(rng);
    let who = *rng.pick(RELATIVES);
    let (mpg, gallons, price) = (rng.range_by(20, 40, 5), rng.range(2, 6), rng.range(3, 5));
    let one_way = mpg * gallons;
    let mut d = Draft::new();
    let (miles, trip) = if rng.chance(1, 2) {
        let miles = d.count("The round trip is @ miles.", Ex::mul(one_way, 2));
        (miles, format!("{hc} drives {one_way} miles to visit {his} {who} and then drives back home."))
    } else {
        (one_way, format!("{hc} drives {one_way} miles to visit {his} {who}."))
    };
    let used = d.count(&format!("At {mpg} miles per gallon, {he} uses @ gallons."), Ex::div(miles, mpg));
    d.money(&format!("At ${price} a gallon, the gas costs @."), Ex::mul(used, price));
    let q = format!(
        "{n}'s car can go {mpg} miles on one gallon of gas. {trip} Gas costs ${price} per gallon. \
         How much does {he} spend on gas for the trip?"
    );
    d.finish(q)
}
