use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::CompileCache;
use crate::abi;
use crate::call::{CallEnv, CallLimits, CallScope, CallState};

/// How often the epoch advances: the granularity of deadlines and of guest
/// yields to the async runtime.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any instance may have; per-connection caps are
/// lower (see `CallLimits`).
const MAX_MEMORY_BYTES: usize = 4 << 30;

/// Instances alive at once, across all connections.
const MAX_CONCURRENT_INSTANCES: u32 = 512;

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached.
    pub cache_dir: PathBuf,
    /// Use the pooling allocator when the machine allows it.
    pub pooling: bool,
    /// Enforce deadlines and memory caps. Always on in Weir itself; off only
    /// to measure what enforcing them costs (guests can then run forever).
    pub enforce_limits: bool,
}

impl RuntimeOptions {
    /// The defaults: pooling where available, limits enforced.
    pub fn new(cache_dir: PathBuf) -> Self {
        Self {
            cache_dir,
            pooling: true,
            enforce_limits: true,
        }
    }
}

/// Everything that lives once per process.
pub struct Runtime {
    engine: Engine,
    linker: Linker<CallState>,
    cache: CompileCache,
    pooling: bool,
    enforce_limits: bool,
    ticker: Option<EpochTicker>,
}

impl Runtime {
    /// Builds the engine (pooling allocator where available), the linker
    /// with WASI (empty context) and Weir's imports, and the compile cache.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Arc<Self>> {
        let (engine, pooling) = if options.pooling {
            match Engine::new(&config(true, options.enforce_limits)) {
                Ok(engine) => (engine, true),
                Err(err) => {
                    tracing::warn!(
                        "the pooling allocator is not available here ({err:#}); instances are allocated on demand"
                    );
                    (Engine::new(&config(false, options.enforce_limits))?, false)
                }
            }
        } else {
            (Engine::new(&config(false, options.enforce_limits))?, false)
        };
        let mut linker = Linker::new(&engine);
        // Guests built for wasm32-wasip2 import parts of WASI even when they
        // use none of it; they get an empty context (no files, env or sockets).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("cannot link WASI into the runtime")?;
        abi::add_to_linker(&mut linker)?;
        let cache = CompileCache::new(options.cache_dir, &engine)?;
        let ticker = options
            .enforce_limits
            .then(|| EpochTicker::start(engine.clone()));
        Ok(Arc::new(Self {
            engine,
            linker,
            cache,
            pooling,
            enforce_limits: options.enforce_limits,
            ticker,
        }))
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker every plugin is instantiated with.
    pub fn linker(&self) -> &Linker<CallState> {
        &self.linker
    }

    /// Whether deadlines and memory caps are enforced.
    pub fn enforces_limits(&self) -> bool {
        self.enforce_limits
    }

    /// The environment of calls into `plugin` (its label) for `scope`: the
    /// only place one is built.
    pub fn call_env(&self, plugin: String, scope: CallScope, limits: CallLimits) -> Arc<CallEnv> {
        CallEnv::new(
            self.engine.clone(),
            self.enforce_limits,
            plugin,
            scope,
            limits,
        )
    }

    /// Whether instances come from the pooling allocator.
    pub fn pooling(&self) -> bool {
        self.pooling
    }

    /// Compiles a component (or loads it from the cache). Blocking: call it
    /// from a blocking thread.
    pub fn compile(&self, wasm: &[u8]) -> anyhow::Result<Component> {
        self.cache.load_or_compile(&self.engine, wasm)
    }

    /// Deletes compiled artifacts of plugins that are no longer kept.
    pub fn prune_cache(&self, live_hashes: &[String]) -> usize {
        self.cache.prune(live_hashes)
    }

    /// Stops the epoch ticker (also done on drop).
    pub fn shutdown(&self) {
        if let Some(ticker) = &self.ticker {
            ticker.stop();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn config(pooling: bool, enforce_limits: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(enforce_limits);
    config.parallel_compilation(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES);
        pool.total_core_instances(MAX_CONCURRENT_INSTANCES * 4);
        pool.max_core_instances_per_component(16);
        pool.total_memories(MAX_CONCURRENT_INSTANCES);
        pool.max_memories_per_component(2);
        pool.total_tables(MAX_CONCURRENT_INSTANCES * 4);
        pool.total_stacks(MAX_CONCURRENT_INSTANCES);
        pool.max_memory_size(MAX_MEMORY_BYTES);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

/// Advances the engine's epoch every tick so that running guests reach
/// their deadline checks and yield to the async runtime.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("a thread can be spawned");
        Self { stop }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
