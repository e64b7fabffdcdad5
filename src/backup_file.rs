//! The temporary file a dump is written to before it is sent (`GET /dump`): unlinked as soon as
//! it is created, so that nothing is left behind whatever happens to the request or the process.

use std::io::{Read, Seek};

use crate::store::{StoreError, StoreResult};

/// Bytes sent per chunk of the answer.
const CHUNK: usize = 256 * 1024;

fn io_error(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("the dump's temporary file: {error}"))
}

/// A new file in the system's temporary directory, already unlinked.
pub fn unlinked() -> StoreResult<std::fs::File> {
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let path = dir.join(format!(
            "device-registry-dump-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path).map_err(io_error)?;
                return Ok(file);
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(io_error(error)),
        }
    }
    Err(StoreError::Unavailable(
        "no temporary file could be created for the dump".into(),
    ))
}

pub fn rewind(file: &mut std::fs::File) -> StoreResult<()> {
    file.rewind().map_err(io_error)
}

/// The file's contents as the chunks of a streamed answer, each read on the blocking pool.
pub fn chunks(
    file: std::fs::File,
) -> impl futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::Error>> {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let read = tokio::task::spawn_blocking(move || {
            let mut buffer = vec![0; CHUNK];
            let read = file.read(&mut buffer)?;
            buffer.truncate(read);
            Ok::<_, std::io::Error>((file, buffer))
        })
        .await;
        match read {
            Ok(Ok((_, buffer))) if buffer.is_empty() => None,
            Ok(Ok((file, buffer))) => Some((Ok(actix_web::web::Bytes::from(buffer)), Some(file))),
            Ok(Err(error)) => {
                log::error!("dump: reading its temporary file failed: {error}");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("dump")),
                    None,
                ))
            }
            Err(error) => {
                log::error!("dump: reading its temporary file failed: {error}");
                Some((
                    Err(actix_web::error::ErrorInternalServerError("dump")),
                    None,
                ))
            }
        }
    })
}
