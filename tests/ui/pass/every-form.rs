//! Every form the attribute accepts compiles (and runs) outside the workspace's lints.
use std::fmt::Display;
use std::num::ParseIntError;

use profiler_runtime::profile;

#[profile]
fn free() {}

#[profile]
fn generic<'a, T: Display + ?Sized, const N: usize>(value: &'a T) -> String
where
    T: Sync,
{
    format!("{value}{N}")
}

#[profile]
unsafe fn unchecked(pointer: *const u32) -> u32 {
    unsafe { *pointer }
}

#[profile]
extern "C" fn c_abi(x: u32) -> u32 {
    x
}

#[profile]
pub(crate) unsafe extern "C" fn both(x: u32) -> u32 {
    x
}

#[profile]
fn opaque() -> impl Iterator<Item = impl Display> {
    0..3
}

#[profile]
fn question(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()? + 1)
}

#[profile]
fn recursive(n: u32) -> u32 {
    if n == 0 { 0 } else { recursive(n - 1) + 1 }
}

#[profile]
fn diverges() -> ! {
    panic!("never called")
}

#[profile]
fn inner_attributes() {
    #![allow(unused_variables)]
    let unused = 1;
}

#[profile]
fn patterns((a, b): (u32, u32), mut c: u32, _: u8) -> u32 {
    c += a + b;
    c
}

#[profile]
fn r#type() {}

/// Documented.
#[inline]
#[must_use]
#[profile(name = "renamed", budget = "500us")]
fn renamed() -> u32 {
    1
}

#[profile]
#[cold]
#[inline(never)]
#[doc = "attribute after"]
fn attributes_after() {}

struct Pool<T> {
    items: Vec<T>,
}

trait Source {
    type Item;
    const KIND: u8;
    fn get(&self, index: usize) -> Option<&Self::Item>;
    fn len(&self) -> usize {
        0
    }
    fn make() -> Self
    where
        Self: Sized;
}

#[profile]
impl<T: Clone> Pool<T> {
    const EMPTY: usize = 0;

    fn new() -> Self {
        Pool { items: Vec::new() }
    }

    fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    #[profile(skip)]
    fn raw(&self) -> usize {
        self.items.len() + Self::EMPTY
    }

    #[profiler_runtime::profile(name = "pool first")]
    fn first(&self) -> Option<T> {
        self.items.first().cloned()
    }

    const fn constant() -> u8 {
        1
    }

    async fn load(&self) -> usize {
        self.items.len()
    }

    fn generic_method<U: Into<T>>(&mut self, value: U) {
        self.items.push(value.into());
    }
}

#[profile(budget = "2 ms")]
impl<T: Clone> Source for Pool<T> {
    type Item = T;
    const KIND: u8 = 1;

    fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    fn make() -> Self {
        Pool::new()
    }
}

#[profile]
trait Tagged {
    fn tag(&self) -> String {
        format!("#{}", self.number())
    }

    fn number(&self) -> u32;

    async fn fetch(&self) -> u32 {
        self.number()
    }
}

impl<T> Tagged for Pool<T> {
    fn number(&self) -> u32 {
        3
    }
}

trait Greet {
    #[profile]
    fn greet(&self) -> &'static str {
        "hello"
    }
}

impl<T> Greet for Pool<T> {}

impl<T> Pool<T> {
    #[profile]
    fn lone(&self) -> usize {
        self.items.len()
    }

    #[profile]
    async fn lone_async(&mut self) -> Option<T> {
        self.items.pop()
    }

    #[profile]
    fn associated() -> Vec<Self> {
        Vec::new()
    }
}

#[profile]
async fn async_free(x: u32) -> u32 {
    x
}

#[profile]
async fn async_question(text: &str) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if text.is_empty() {
        return Err("empty".into());
    }
    Ok(text.parse::<u32>()?)
}

#[profile]
async fn async_opaque() -> impl Display {
    "x"
}

#[profile]
async fn async_borrow<'a>(text: &'a str, _other: &str) -> &'a str {
    text
}

#[profile]
#[tokio::main(flavor = "current_thread")]
async fn tokio_inside() -> u32 {
    async_free(1).await
}

#[tokio::main(flavor = "current_thread")]
#[profile]
async fn tokio_outside() -> u32 {
    async_free(2).await
}

fn assert_send<T: Send>(_: &T) {}

fn main() {
    free();
    assert_eq!(generic::<str, 1>("a"), "a1");
    let value = 5;
    assert_eq!(unsafe { unchecked(&value) }, 5);
    assert_eq!(c_abi(1) + unsafe { both(2) }, 3);
    assert_eq!(opaque().count(), 3);
    assert_eq!(question("1"), Ok(2));
    assert_eq!(recursive(3), 3);
    let _ = diverges as fn() -> !;
    inner_attributes();
    assert_eq!(patterns((1, 2), 3, 0), 6);
    r#type();
    assert_eq!(renamed(), 1);
    attributes_after();

    let mut pool: Pool<u32> = Pool::new();
    pool.generic_method(1u8);
    assert_eq!(Pool::get(&pool, 0), Some(&1));
    assert_eq!(Source::get(&pool, 0), Some(&1));
    assert_eq!(pool.raw() + pool.len() + usize::from(Pool::<u32>::constant()), 2);
    assert_eq!(pool.first(), Some(1));
    assert_eq!(<Pool<u32> as Source>::make().items.len(), 0);
    assert_eq!(pool.tag(), "#3");
    assert_eq!(pool.greet(), "hello");
    assert_eq!(pool.lone(), 1);
    assert!(Pool::<u32>::associated().is_empty());
    assert_eq!(<Pool<u32> as Source>::KIND, 1);

    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let future = pool.load();
    assert_send(&future);
    assert_eq!(runtime.block_on(future), 1);
    assert_eq!(runtime.block_on(pool.fetch()), 3);
    assert_eq!(runtime.block_on(pool.lone_async()), Some(1));
    let future = async_question("7");
    assert_send(&future);
    assert_eq!(runtime.block_on(future).unwrap(), 7);
    assert!(runtime.block_on(async_question("")).is_err());
    assert_eq!(runtime.block_on(async_opaque()).to_string(), "x");
    assert_eq!(runtime.block_on(async_borrow("a", "b")), "a");
    drop(runtime);
    assert_eq!(tokio_inside() + tokio_outside(), 3);
}
