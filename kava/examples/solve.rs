//! Embedding kava in an application: load a model and answer one question in latent mode and
//! with a full chain of thought (`cargo run -p kava --example solve`). The embedded demo model
//! needs no download; `Model::load("path/to/hf-dir-or.gguf", &device)` loads any other.

use kava::solve::SolveOptions;
use kava::{demo, Backend, Mode};

fn main() -> kava::Result<()> {
    let device = Backend::Cpu.device()?;
    let model = demo::embedded::load(&device)?;
    let question = &demo::embedded::problems()?[0].question;
    println!("{question}");
    for mode in [Mode::Latent, Mode::Cot] {
        let s = model.solve(question, mode, &SolveOptions::default())?;
        println!("{mode}: {:?} in {} forward passes", s.answer, s.stats.forward_passes);
    }
    Ok(())
}
