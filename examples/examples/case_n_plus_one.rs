//! Tutorial 04, case study 1: an N+1 query pattern against an in-memory database, caught by the
//! call count of `Client::query`, fixed by fetching the customers in one batched query.
//!
//! Run: `cargo run --release -p profiler-examples --example case_n_plus_one`
//! Runs the slow variant, then the fixed one, in one process; writes
//! `target/profiles/case_n_plus_one-before.*` and `-after.*` (or under `$PROFILER_OUTPUT`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;

use profiler_examples::logs::Rng;
use profiler_examples::{measure, output_prefix};
use profiler_runtime::profile;

/// A customer row.
#[derive(Clone, Debug, PartialEq)]
struct Customer {
    id: u32,
    name: String,
    country: String,
}

/// An order row.
#[derive(Clone, Debug)]
struct Order {
    id: u32,
    customer_id: u32,
    cents: u64,
}

/// The database server: owns the customers table, runs on its own thread, and answers
/// `SELECT id, name, country FROM customers WHERE id IN (...)` or `... WHERE id = N` with the
/// rows as wire text, one `id|name|country` line per row.
struct Server {
    customers: BTreeMap<u32, Customer>,
}

#[profile]
impl Server {
    /// Parses and runs one query.
    fn execute(&self, sql: &str) -> String {
        let condition = sql
            .split_once(" WHERE id ")
            .map_or("", |(_, condition)| condition);
        let ids: Vec<u32> = if let Some(list) = condition.strip_prefix("IN (") {
            list.trim_end_matches(')')
                .split(',')
                .filter_map(|id| id.trim().parse().ok())
                .collect()
        } else {
            condition
                .strip_prefix("= ")
                .and_then(|id| id.trim().parse().ok())
                .into_iter()
                .collect()
        };
        let mut wire = String::new();
        for id in ids {
            if let Some(c) = self.customers.get(&id) {
                let _ = writeln!(wire, "{}|{}|{}", c.id, c.name, c.country);
            }
        }
        wire
    }
}

/// The application's connection to the server: every query is a round trip to the server's
/// thread, as it would be over a socket.
struct Client {
    requests: Sender<String>,
    replies: Receiver<String>,
}

#[profile]
impl Client {
    fn query(&self, sql: &str) -> String {
        self.requests
            .send(sql.to_owned())
            .expect("the server is running");
        self.replies.recv().expect("the server answers")
    }
}

/// Starts the server on a thread named `db-server`; it stops when the client is dropped.
fn connect(customers: BTreeMap<u32, Customer>) -> (Client, JoinHandle<()>) {
    let (requests, incoming) = mpsc::channel::<String>();
    let (reply, replies) = mpsc::channel();
    let server = Server { customers };
    let thread = std::thread::Builder::new()
        .name("db-server".into())
        .spawn(move || {
            for sql in incoming {
                if reply.send(server.execute(&sql)).is_err() {
                    break;
                }
            }
        })
        .expect("spawn the database thread");
    (Client { requests, replies }, thread)
}

/// Generates the customers table and the orders (the orders live in the application).
fn generate(customers: u32, orders: u32) -> (BTreeMap<u32, Customer>, Vec<Order>) {
    let mut rng = Rng::new(11);
    let countries = ["DE", "FR", "JP", "BR", "US", "IN", "NG"];
    let table = (1..=customers)
        .map(|id| {
            let name = format!("customer-{:06}", rng.below(1_000_000));
            let country = countries[rng.below(countries.len() as u64) as usize].to_owned();
            (id, Customer { id, name, country })
        })
        .collect::<BTreeMap<_, _>>();
    let orders = (1..=orders)
        .map(|id| Order {
            id,
            customer_id: 1 + rng.below(u64::from(customers)) as u32,
            cents: 100 + rng.below(50_000),
        })
        .collect();
    (table, orders)
}

/// One invoice line.
fn invoice(order: &Order, customer: &Customer) -> String {
    format!(
        "#{} {} ({}) {}.{:02}",
        order.id,
        customer.name,
        customer.country,
        order.cents / 100,
        order.cents % 100
    )
}

/// Decodes the wire text of [`Server::execute`].
#[profile]
fn decode(wire: &str) -> Vec<Customer> {
    wire.lines()
        .filter_map(|line| {
            let mut fields = line.split('|');
            Some(Customer {
                id: fields.next()?.parse().ok()?,
                name: fields.next()?.to_owned(),
                country: fields.next()?.to_owned(),
            })
        })
        .collect()
}

// ANCHOR: before
/// Before: one query per order to find its customer (the "+N").
#[profile]
fn invoices_n_plus_one(db: &Client, orders: &[Order]) -> Vec<String> {
    orders
        .iter()
        .map(|order| {
            let sql = format!(
                "SELECT id, name, country FROM customers WHERE id = {}",
                order.customer_id
            );
            let customer = decode(&db.query(&sql))
                .pop()
                .expect("every order has a customer");
            invoice(order, &customer)
        })
        .collect()
}
// ANCHOR_END: before

// ANCHOR: after
/// After: the distinct customer ids in one `IN (...)` query, then a hash join in memory.
#[profile]
fn invoices_batched(db: &Client, orders: &[Order]) -> Vec<String> {
    let mut ids: Vec<u32> = orders.iter().map(|o| o.customer_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("SELECT id, name, country FROM customers WHERE id IN ({list})");
    let customers: HashMap<u32, Customer> = decode(&db.query(&sql))
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    orders
        .iter()
        .map(|order| invoice(order, &customers[&order.customer_id]))
        .collect()
}
// ANCHOR_END: after

// ANCHOR: main
fn main() {
    let (customers, orders) = generate(2_000, 20_000);
    let (db, server) = connect(customers);
    let prefix = output_prefix("case_n_plus_one");
    let _ = profiler_runtime::flush(); // start both variants from an empty profile

    let before = invoices_n_plus_one(&db, &orders);
    let before_profile = profiler_runtime::flush();
    let after = invoices_batched(&db, &orders);
    drop(db);
    server.join().expect("the database thread");
    let after_profile = profiler_runtime::flush();
    assert_eq!(
        before, after,
        "both variants must produce the same invoices"
    );

    println!("{} invoices; first: {}", after.len(), after[0]);
    println!(
        "{:<8} {:>16} {:>16} {:>12} {:>12}",
        "variant", "Client::query", "Server::execute", "in server", "total"
    );
    for (variant, profile, function) in [
        ("before", &before_profile, "invoices_n_plus_one"),
        ("after", &after_profile, "invoices_batched"),
    ] {
        let queries = measure::totals(profile, "Client::query");
        let executed = measure::totals(profile, "Server::execute");
        let total = measure::totals(profile, function);
        println!(
            "{variant:<8} {:>10} calls {:>10} calls {:>12} {:>12}",
            queries.calls,
            executed.calls,
            measure::ms(executed.total_ns),
            measure::ms(total.total_ns)
        );
        let suffix = format!("-{variant}");
        match measure::write_profile(profile, &prefix, &suffix) {
            Ok(paths) => paths.iter().for_each(|p| println!("wrote {}", p.display())),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
    }
}
// ANCHOR_END: main
