//! `~/.databrickscfg` (INI, as the Go SDK's parser): never panics; every section and key it
//! reports can be looked up.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(ini) = lakebase_core::config::ini::IniFile::parse(text) else { return };
    let names: Vec<String> = ini.profile_names().map(String::from).collect();
    for s in ini.sections() {
        let keys: Vec<String> = s.keys().map(String::from).collect();
        for k in keys {
            let _ = s.get(&k);
        }
        assert!(ini.section(s.name()).is_some());
    }
    for n in names {
        let _ = ini.section(&n);
    }
});
