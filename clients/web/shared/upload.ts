// A file through the ticket flow (README "The photo flow"): hash it (SHA-256), ask for a
// ticket, PUT the bytes straight to the object store (one URL, or one per part) with progress,
// then have the server confirm size, type and hash. The same bytes already stored need no PUT.
import { ApiError, raiseUserErrors, type Api } from './graphql'
import { graphql } from './graphql'

const RequestUpload = graphql(`
  mutation SharedRequestUpload($input: RequestUploadInput!) {
    requestUpload(input: $input) {
      upload { id status }
      ticket { url method headers { name value } parts { number url offset size } }
      errors { code message field }
    }
  }
`)

const ConfirmUpload = graphql(`
  mutation SharedConfirmUpload($uploadId: ID!) {
    confirmUpload(uploadId: $uploadId) {
      upload { id status }
      errors { code message field }
    }
  }
`)

export type UploadTarget =
  | { readonly kind: 'MATERIAL'; readonly material: { projectId: string; materialType: string } }
  | {
      readonly kind: 'PHOTO'
      readonly check: { inspectionId: string; department: string; checkCode: string }
    }

export interface UploadProgress {
  readonly phase: 'hashing' | 'sending' | 'confirming' | 'done'
  /** 0..1 of the bytes sent (1 once nothing is left to send). */
  readonly fraction: number
}

export async function sha256Hex(blob: Blob): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', await blob.arrayBuffer())
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}

function put(
  url: string,
  method: string,
  headers: readonly { name: string; value: string }[],
  body: Blob,
  onProgress: (loaded: number) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest()
    request.open(method, url)
    for (const header of headers) request.setRequestHeader(header.name, header.value)
    request.upload.onprogress = (event) => onProgress(event.loaded)
    request.onload = () => {
      if (request.status >= 200 && request.status < 300) resolve()
      else reject(new ApiError('server', `文件存储拒收了上传 (HTTP ${request.status}): ${request.responseText.slice(0, 200)}`))
    }
    request.onerror = () => reject(new ApiError('offline', '上传中断: 网络不可用, 请稍后重试'))
    request.send(body)
  })
}

export interface UploadTicketLike {
  readonly url: string | null
  readonly method: string
  readonly headers: readonly { name: string; value: string }[]
  readonly parts: readonly { number: number; url: string; offset: number; size: number }[]
}

/** The bytes of ``blob`` to a ticket: one PUT to its URL, or one PUT per part (large files on
 * MinIO), telling ``onSent`` how many bytes are out so far. */
export async function sendToTicket(
  ticket: UploadTicketLike,
  blob: Blob,
  onSent: (bytes: number) => void = () => undefined,
): Promise<void> {
  if (ticket.url) {
    await put(ticket.url, ticket.method, ticket.headers, blob, onSent)
    return
  }
  let sent = 0
  for (const part of ticket.parts) {
    const piece = blob.slice(part.offset, part.offset + part.size)
    await put(part.url, ticket.method, ticket.headers, piece, (loaded) => onSent(sent + loaded))
    sent += part.size
  }
}

/** Uploads ``file`` and returns the confirmed upload's id. */
export async function uploadFile(
  api: Api,
  file: File,
  target: UploadTarget,
  onProgress: (progress: UploadProgress) => void = () => undefined,
): Promise<string> {
  onProgress({ phase: 'hashing', fraction: 0 })
  const sha256 = await sha256Hex(file)
  const requested = await api.mutation(RequestUpload, {
    input: {
      kind: target.kind,
      sha256,
      sizeBytes: file.size,
      contentType: file.type || 'application/octet-stream',
      fileName: file.name,
      ...(target.kind === 'MATERIAL' ? { material: target.material } : { check: target.check }),
    },
  })
  raiseUserErrors(requested.requestUpload.errors)
  const upload = requested.requestUpload.upload
  const ticket = requested.requestUpload.ticket
  if (!upload) throw new ApiError('server', '服务器未返回上传凭证')
  if (!ticket) {
    onProgress({ phase: 'done', fraction: 1 })
    return upload.id // the same bytes are stored already
  }
  onProgress({ phase: 'sending', fraction: 0 })
  await sendToTicket(ticket, file, (sent) =>
    onProgress({ phase: 'sending', fraction: file.size ? sent / file.size : 1 }),
  )
  onProgress({ phase: 'confirming', fraction: 1 })
  const confirmed = await api.mutation(ConfirmUpload, { uploadId: upload.id })
  raiseUserErrors(confirmed.confirmUpload.errors)
  onProgress({ phase: 'done', fraction: 1 })
  return upload.id
}
