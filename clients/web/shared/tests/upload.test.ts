// The bytes go to the ticket's URL, or part by part to each part's URL, with progress counted
// over the whole file; a refusal of the store is an error that says so.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ApiError } from '../graphql'
import { sendToTicket } from '../upload'

interface Sent {
  method: string
  url: string
  headers: Record<string, string>
  body: string
}

function fakeXhr(sent: Sent[], status = 200): void {
  class FakeRequest {
    method = ''
    url = ''
    headers: Record<string, string> = {}
    status = 0
    responseText = ''
    upload: { onprogress: ((event: { loaded: number }) => void) | null } = { onprogress: null }
    onload: (() => void) | null = null
    onerror: (() => void) | null = null
    open(method: string, url: string): void {
      this.method = method
      this.url = url
    }
    setRequestHeader(name: string, value: string): void {
      this.headers[name] = value
    }
    send(body: Blob): void {
      void body.text().then((text) => {
        sent.push({ method: this.method, url: this.url, headers: this.headers, body: text })
        this.upload.onprogress?.({ loaded: body.size })
        this.status = status
        this.responseText = status >= 400 ? 'refused' : ''
        this.onload?.()
      })
    }
  }
  vi.stubGlobal('XMLHttpRequest', FakeRequest)
}

afterEach(() => vi.unstubAllGlobals())

describe('sendToTicket', () => {
  it('puts the whole file to a single URL with the ticket headers', async () => {
    const sent: Sent[] = []
    fakeXhr(sent)
    const progress: number[] = []
    const ticket = { url: '/objects/upload/t1', method: 'PUT', headers: [{ name: 'Content-Type', value: 'application/pdf' }], parts: [] }
    await sendToTicket(ticket, new Blob(['%PDF-1.4 hello']), (n) => progress.push(n))
    expect(sent).toEqual([{ method: 'PUT', url: '/objects/upload/t1', headers: { 'Content-Type': 'application/pdf' }, body: '%PDF-1.4 hello' }])
    expect(progress.at(-1)).toBe(14)
  })

  it('puts each part from its offset and counts progress over the whole file', async () => {
    const sent: Sent[] = []
    fakeXhr(sent)
    const progress: number[] = []
    const ticket = {
      url: null,
      method: 'PUT',
      headers: [],
      parts: [
        { number: 1, url: 'https://files/p1', offset: 0, size: 4 },
        { number: 2, url: 'https://files/p2', offset: 4, size: 4 },
        { number: 3, url: 'https://files/p3', offset: 8, size: 2 },
      ],
    }
    await sendToTicket(ticket, new Blob(['abcdefghij']), (n) => progress.push(n))
    expect(sent.map((s) => [s.url, s.body])).toEqual([
      ['https://files/p1', 'abcd'],
      ['https://files/p2', 'efgh'],
      ['https://files/p3', 'ij'],
    ])
    expect(progress).toEqual([4, 8, 10])
  })

  it('fails with the store status when the store refuses', async () => {
    fakeXhr([], 403)
    const ticket = { url: '/objects/upload/t2', method: 'PUT', headers: [], parts: [] }
    await expect(sendToTicket(ticket, new Blob(['x']))).rejects.toThrow(ApiError)
    await expect(sendToTicket(ticket, new Blob(['x']))).rejects.toThrow(/HTTP 403/)
  })
})
