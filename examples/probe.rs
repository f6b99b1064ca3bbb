fn main() {
    let path = std::env::args().nth(1).unwrap();
    match ntheap::Dump::open(&path) {
        Ok(d) => {
            println!("{:?} streams={} modules={} threads={} ranges={} warnings={:?}", d.target(), d.info().streams.len(), d.info().modules.len(), d.info().threads.len(), d.memory().ranges().len(), d.info().warnings);
            match ntheap::process::process_info(&d) { Ok(p) => println!("{:#x?}", p), Err(e) => println!("process: {e}") }
        }
        Err(e) => println!("open: {e}"),
    }
}
