//! Choosing a burn `Device` from a backend name. Library code never names a backend type:
//! callers pick a device here (or build their own) and pass it down.

use std::str::FromStr;

use burn::tensor::Device;

use crate::error::{Error, Result};

/// The backends kava can be built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (`cpu` feature).
    Cpu,
    /// Native GPU through wgpu: Vulkan, Metal or DX12 (`wgpu` feature).
    Wgpu,
    /// NVIDIA CUDA (`cuda` feature).
    Cuda,
}

impl FromStr for Backend {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Backend::Cpu),
            "wgpu" => Ok(Backend::Wgpu),
            "cuda" => Ok(Backend::Cuda),
            other => Err(Error::Input { what: format!("backend `{other}`"), problem: "expected cpu, wgpu or cuda".into() }),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Cpu => "cpu",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        })
    }
}

impl Backend {
    /// The backends compiled into this build.
    pub fn compiled() -> Vec<Backend> {
        let mut v = vec![];
        if cfg!(feature = "cpu") {
            v.push(Backend::Cpu);
        }
        if cfg!(feature = "wgpu") {
            v.push(Backend::Wgpu);
        }
        if cfg!(feature = "cuda") {
            v.push(Backend::Cuda);
        }
        v
    }

    /// The device of this backend, or an error if it was not compiled in. wgpu and CUDA
    /// devices are opened lazily by burn; [`Backend::probe`] checks that one really exists.
    pub fn device(self) -> Result<Device> {
        let missing = |feature: &str| Error::Backend {
            backend: self.to_string(),
            problem: format!("this build lacks the `{feature}` cargo feature"),
        };
        match self {
            #[cfg(feature = "cpu")]
            Backend::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            _ => Err(missing(&self.to_string())),
        }
    }

    /// Opens the device and runs one tiny op, turning a missing adapter/driver (which burn
    /// reports by panicking) into an error.
    pub fn probe(self) -> Result<Device> {
        let device = self.device()?;
        let d = device.clone();
        // burn panics when no adapter or driver exists; keep that panic off the terminal.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| log::debug!("backend probe: {info}")));
        let ok = std::panic::catch_unwind(move || {
            let x = burn::tensor::Tensor::<1>::from_data([1.0f32, 2.0], &d);
            x.sum().into_scalar::<f32>()
        });
        std::panic::set_hook(hook);
        match ok {
            Ok(v) if (v - 3.0).abs() < 1e-6 => Ok(device),
            Ok(v) => Err(Error::Backend { backend: self.to_string(), problem: format!("self-test computed {v}, not 3") }),
            Err(_) => Err(Error::Backend { backend: self.to_string(), problem: "no usable device or driver found".into() }),
        }
    }

    /// Whether the device is a real card. Software adapters (lavapipe, llvmpipe through GL)
    /// report no physical card; they are far slower than the CPU backend itself.
    pub fn is_hardware(device: &Device) -> bool {
        #[cfg(any(feature = "wgpu", feature = "cuda", feature = "webgpu"))]
        {
            device.identity().is_some_and(|id| id.physical.is_some())
        }
        #[cfg(not(any(feature = "wgpu", feature = "cuda", feature = "webgpu")))]
        {
            let _ = device;
            false
        }
    }

    /// The fastest backend that works here: CUDA, then wgpu on a real GPU, then the CPU.
    /// (`--backend wgpu` still runs on a software adapter when asked for explicitly.)
    pub fn best() -> Result<(Backend, Device)> {
        Self::best_explained().map(|(b, d, _)| (b, d))
    }

    /// [`Backend::best`] and, in a few words, why that backend: what was skipped on the way.
    pub fn best_explained() -> Result<(Backend, Device, String)> {
        let mut last = None;
        let mut skipped = Vec::new();
        for b in [Backend::Cuda, Backend::Wgpu, Backend::Cpu] {
            if !Backend::compiled().contains(&b) {
                skipped.push(format!("{b} not compiled in"));
                continue;
            }
            match b.probe() {
                Ok(d) if b == Backend::Wgpu && !Self::is_hardware(&d) => {
                    log::info!("wgpu found only a software adapter; using the CPU backend instead");
                    skipped.push("wgpu found only a software adapter (slower than the CPU backend)".into());
                }
                Ok(d) => {
                    let chosen = match b {
                        Backend::Cuda => "a CUDA device",
                        Backend::Wgpu => "a hardware GPU",
                        Backend::Cpu => "the fallback",
                    };
                    skipped.push(format!("{b}: {chosen}"));
                    return Ok((b, d, format!("auto: {}", skipped.join("; "))));
                }
                Err(e) => {
                    skipped.push(format!("{b}: no usable device"));
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::Backend { backend: "any".into(), problem: "no backend compiled in".into() }))
    }
}
