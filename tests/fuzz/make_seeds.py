#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/ (small, deterministic). Run from anywhere with
/usr/bin/python3; the outputs are committed, so this only needs re-running to change them."""
import json, os, shutil, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, '..', 'data')
C = os.path.join(HERE, 'corpus')


def out(target, name, data):
    d = os.path.join(C, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


# --- safetensors -------------------------------------------------------------------------------
def st(tensors, meta=None, pad=0):
    hdr, blob = {}, b''
    if meta is not None:
        hdr['__metadata__'] = meta
    for name, (dtype, shape, data) in tensors.items():
        hdr[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(blob), len(blob) + len(data)]}
        blob += data
    h = json.dumps(hdr, separators=(',', ':')).encode() + b' ' * pad
    return struct.pack('<Q', len(h)) + h + blob


out('fuzz_safetensors', 'two_tensors', st({'a': ('F32', [2], struct.pack('<2f', 1.5, -2)),
                                            'b': ('BF16', [2, 2], b'\x80\x3f' * 4)}, {'format': 'pt'}))
out('fuzz_safetensors', 'all_dtypes', st({'f16': ('F16', [3], b'\x00\x3c\x00\x80\x01\x00'),
                                           'i32': ('I32', [1], struct.pack('<i', -7)),
                                           'i64': ('I64', [1, 1], struct.pack('<q', 1 << 40)),
                                           'u8': ('U8', [4], b'\x00\x01\xfe\xff'),
                                           'empty': ('F32', [0, 5], b''),
                                           'scalar': ('F32', [], struct.pack('<f', 3.0))}, pad=5))
def st_raw(header, blob=b''):
    h = header.encode()
    return struct.pack('<Q', len(h)) + h + blob


out('fuzz_safetensors', 'escapes', st_raw('{"w\\u00e9ird\\"na\\/me\\ud83d\\ude00":'
                                           '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b'\0' * 4))
out('fuzz_safetensors', 'empty_header', st_raw('{}'))
out('fuzz_safetensors', 'unknown_fields', st_raw('{"x":{"extra":[1,{"k":null,"t":true}],"dtype":"U8",'
                                                 '"shape":[2],"data_offsets":[0,2]}}', b'ab'))

# --- config ------------------------------------------------------------------------------------
names = ['config.json', 'preprocessor_config.json', 'processor_config.json', 'special_tokens_map.json',
         'tokenizer_config.json']
for i, n in enumerate(names):
    with open(os.path.join(DATA, 'tiny', 'janusflow', n), 'rb') as f:
        out('fuzz_config', 'model_' + n, bytes([i]) + f.read())
with open(os.path.join(DATA, 'tiny', 'vae', 'config.json'), 'rb') as f:
    out('fuzz_config', 'vae_config.json', bytes([5]) + f.read())
out('fuzz_config', 'absent_processor', bytes([0x82]))
out('fuzz_config', 'other_model', bytes([0]) + b'{"model_type": "llama", "architectures": ["LlamaForCausalLM"]}')

# --- tokenizer ---------------------------------------------------------------------------------
texts = {
    'english': 'Hello world! How are you doing today?',
    'code': 'def f(x):\n    return x**2  # square\n\tprint("hi")',
    'digits': '12345 678.9 0x1F 1,000,000',
    'cjk': '\u4f60\u597d\uff0c\u4e16\u754c\u3002\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8',
    'emoji': 'smile \U0001F600 flag \U0001F1EB\U0001F1F7 zwj \U0001F469\u200d\U0001F4BB',
    'special': '<\uff5cbegin\u2581of\u2581sentence\uff5c>User: <image_placeholder>\n\nAssistant:',
    'spaces': '   leading\n\n\n  trailing   \r\n',
    'mixed': "I'm can't we'll, caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \u0645\u0631\u062d\u0628\u0627",
}
for k, v in texts.items():
    out('fuzz_tokenizer', 'text_' + k, bytes([0]) + v.encode())
out('fuzz_tokenizer', 'text_bos', bytes([2]) + texts['english'].encode())
with open(os.path.join(DATA, 'tiny', 'janusflow', 'tokenizer.json'), 'rb') as f:
    out('fuzz_tokenizer', 'load_tiny', bytes([1]) + f.read())
mini = {
    'version': '1.0', 'truncation': None, 'padding': None,
    'added_tokens': [{'id': 8, 'content': '<s>', 'single_word': False, 'lstrip': False, 'rstrip': False,
                      'normalized': False, 'special': True}],
    'normalizer': None,
    'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
        {'type': 'Split', 'pattern': {'Regex': '\\p{N}{1,3}'}, 'behavior': 'Isolated', 'invert': False},
        {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}]},
    'post_processor': {'type': 'TemplateProcessing',
                       'single': [{'SpecialToken': {'id': '<s>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
                       'pair': [{'Sequence': {'id': 'A', 'type_id': 0}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
                       'special_tokens': {'<s>': {'id': '<s>', 'ids': [8], 'tokens': ['<s>']}}},
    'decoder': {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': True},
    'model': {'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
              'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False,
              'vocab': {'a': 0, 'b': 1, 'ab': 2, '\u0120': 3, '1': 4, '2': 5, '12': 6, 'c': 7},
              'merges': ['a b', '1 2']},
}
out('fuzz_tokenizer', 'load_mini', bytes([1]) + json.dumps(mini).encode())

# --- png text ----------------------------------------------------------------------------------
def chunk(t, d):
    return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)


def png(chunks_before, chunks_after=(), w=1, h=1):
    sig = b'\x89PNG\r\n\x1a\n'
    ihdr = chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
    raw = b''.join(b'\0' + b'\x10\x20\x30' * w for _ in range(h))
    idat = chunk(b'IDAT', zlib.compress(raw))
    return sig + ihdr + b''.join(chunks_before) + idat + b''.join(chunks_after) + chunk(b'IEND', b'')


out('fuzz_png_text', 'text_all_kinds', png([
    chunk(b'tEXt', b'prompt\0a red cube'),
    chunk(b'zTXt', b'seed\0\0' + zlib.compress(b'42')),
    chunk(b'iTXt', b'steps\0\0\0en\0steps\x00' + '30 \u00e9tapes'.encode()),
    chunk(b'iTXt', b'cfg\0\1\0\0\0' + zlib.compress('2 \u2713'.encode())),
], [chunk(b'tEXt', b'after\0idat text')]))
out('fuzz_png_text', 'latin1', png([chunk(b'tEXt', b'Comment\0caf\xe9 \xa9')]))
out('fuzz_png_text', 'no_text', png([]))
for n in ('text_many.png', 'text_mixed.png', 'text_broken.png'):
    p = os.path.join(DATA, 'image', n)
    if os.path.exists(p) and os.path.getsize(p) < 16384:
        shutil.copy(p, os.path.join(C, 'fuzz_png_text', n))

# --- image -------------------------------------------------------------------------------------
keep = ['fmt_bmp.bmp', 'fmt_gif.gif', 'fmt_jpeg.jpg', 'fmt_jpeg_exif6.jpg', 'fmt_tiff.tif', 'png_gray1.png',
        'png_gray16.png', 'png_gray8_trns.png', 'png_graya16.png', 'png_pal2_interlaced.png', 'png_pal4_trns.png',
        'png_rgb16_interlaced.png', 'png_rgb8.png', 'bad_huge.png', 'bad_zero_width.png', 'bad_truncated.png',
        'bad_zlib.png', 'bad_huge.gif']
for n in keep:
    p = os.path.join(DATA, 'image', n)
    if os.path.exists(p):
        shutil.copy(p, os.path.join(C, 'fuzz_image', n)) if os.path.isdir(os.path.join(C, 'fuzz_image')) else (
            os.makedirs(os.path.join(C, 'fuzz_image')), shutil.copy(p, os.path.join(C, 'fuzz_image', n)))
out('fuzz_image', 'rgba_2x2.png', png([], w=2, h=2))

# --- npy ---------------------------------------------------------------------------------------
def npy(descr, shape, data, version=1, quote="'"):
    sh = '(' + ', '.join(str(s) for s in shape) + (',)' if len(shape) == 1 else ')')
    h = ("{%sdescr%s: %s%s%s, %sfortran_order%s: False, %sshape%s: %s, }" %
         (quote, quote, quote, descr, quote, quote, quote, quote, quote, sh)).encode()
    pre = 10 if version == 1 else 12
    total = (pre + len(h) + 1 + 63) // 64 * 64
    h = h + b' ' * (total - pre - len(h) - 1) + b'\n'
    ln = struct.pack('<H', len(h)) if version == 1 else struct.pack('<I', len(h))
    return b'\x93NUMPY' + bytes([version, 0]) + ln + h + data


out('fuzz_npy', 'f4_2x3', npy('<f4', [2, 3], struct.pack('<6f', *range(6))))
out('fuzz_npy', 'i8_v2', npy('<i8', [3], struct.pack('<3q', -1, 0, 1 << 40), version=2))
out('fuzz_npy', 'i4_scalar', npy('<i4', [], struct.pack('<i', 7), version=3, quote='"'))
out('fuzz_npy', 'u1_empty', npy('|u1', [0, 4], b''))
out('fuzz_npy', 'u1_4d', npy('|u1', [1, 2, 1, 2], b'\1\2\3\4'))
