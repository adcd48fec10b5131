//! `crate = path` for crates that re-export the runtime under another name.
mod facade {
    pub use profiler_runtime::*;
}

#[profiler_runtime::profile(crate = crate::facade)]
fn work() -> u32 {
    1
}

struct Pool;

#[facade::profile(crate = crate::facade)]
impl Pool {
    fn get(&self) -> u32 {
        2
    }
}

fn main() {
    assert_eq!(work() + Pool.get(), 3);
    let names: Vec<String> = facade::registered_functions().map(|f| f.name).collect();
    assert!(names.iter().any(|n| *n == format!("{}::work", module_path!())), "{names:?}");
    assert!(names.iter().any(|n| *n == format!("{}::Pool::get", module_path!())), "{names:?}");
}
