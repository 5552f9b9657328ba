<?php
/**
 * The screen's pure rules: stage labels, the next step per state,
 * certificate expiry, paging and filtering, the notices' texts and the DNS
 * check interval field.
 *
 * @package Closte_Operator
 */

final class ScreenTest extends Closte_Operator_Test_Case {

	const NOW = 1700000000;

	private static function entry( string $domain, array $fields = array() ): array {
		return $fields + array(
			'domain'      => $domain,
			'name'        => str_replace( '.', '-', $domain ),
			'siteId'      => 2,
			'stage'       => 'done',
			'ready'       => true,
			'reason'      => 'Ready',
			'message'     => 'verified',
			'conditions'  => array(),
			'certificate' => array( 'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', self::NOW + 60 * 86400 ) ),
		);
	}

	private static function dns( string $status, string $message ): array {
		return array(
			array(
				'type'    => 'Registered',
				'status'  => 'True',
				'reason'  => 'Registered',
				'message' => 'on Closte',
			),
			array(
				'type'    => 'DNSReady',
				'status'  => $status,
				'reason'  => 'True' === $status ? 'Matched' : 'TargetMismatch',
				'message' => $message,
			),
		);
	}

	private static function cert_in( int $seconds ): array {
		return array( 'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', self::NOW + $seconds ) );
	}

	public function test_every_stage_has_a_readable_label(): void {
		$labels = array(
			'pending'           => 'Pending',
			'checking-dns'      => 'Checking DNS',
			'checking-ssl-cert' => 'Checking the certificate',
			'done'              => 'Done',
			'failed'            => 'Failed',
			'ssl-failed'        => 'Certificate failed',
			''                  => 'Not checked yet',
			'some-new-stage'    => 'some-new-stage',
		);
		foreach ( $labels as $stage => $label ) {
			$this->assertSame( $label, Closte_Operator_Screen::stage_label( $stage ), $stage );
		}
	}

	public function test_checking_dns_says_where_dns_must_point(): void {
		$entry = self::entry(
			'shop.example.com',
			array(
				'stage'      => 'checking-dns',
				'ready'      => false,
				'reason'     => 'TargetMismatch',
				'conditions' => self::dns( 'False', 'shop.example.com resolves to 203.0.113.9, expected one of 127.0.0.1, lb.example.net' ),
			)
		);
		$this->assertSame( array( '127.0.0.1', 'lb.example.net' ), Closte_Operator_Screen::dns_targets( $entry ) );
		$this->assertSame(
			'Point shop.example.com at 127.0.0.1, lb.example.net (an A/AAAA record, or a CNAME to a name) at its DNS provider. Last check: shop.example.com resolves to 203.0.113.9, expected one of 127.0.0.1, lb.example.net.',
			Closte_Operator_Screen::next_step( $entry, self::NOW )
		);

		// expected targets carried by the listing win over the message
		$entry['expectedTargets'] = array( '198.51.100.7' );
		$this->assertStringContainsString( 'Point shop.example.com at 198.51.100.7 (', Closte_Operator_Screen::next_step( $entry, self::NOW ) );

		// no targets known (NXDOMAIN): the site's address, and what the check saw
		$nx = self::entry(
			'new.example.com',
			array(
				'stage'      => 'checking-dns',
				'ready'      => false,
				'conditions' => self::dns( 'False', 'new.example.com does not exist (NXDOMAIN)' ),
			)
		);
		$this->assertSame( array(), Closte_Operator_Screen::dns_targets( $nx ) );
		$this->assertSame(
			'Point new.example.com at this site\'s address with an A/AAAA record or a CNAME at its DNS provider. Last check: new.example.com does not exist (NXDOMAIN).',
			Closte_Operator_Screen::next_step( $nx, self::NOW )
		);
		unset( $nx['conditions'] );
		$this->assertStringContainsString( 'Last check: not checked yet.', Closte_Operator_Screen::next_step( $nx, self::NOW ) );
	}

	public function test_failed_states_give_the_reason_and_the_status_command(): void {
		$rejected = self::entry(
			'rejected.example.com',
			array(
				'name'    => 'rejected-example-com',
				'stage'   => 'failed',
				'ready'   => false,
				'reason'  => 'DomainRejected',
				'message' => 'Closte refused the domain: invalid',
			)
		);
		$this->assertSame(
			'Failed: DomainRejected: Closte refused the domain: invalid. For the details and what to fix, run closte-operator status rejected-example-com.',
			Closte_Operator_Screen::next_step( $rejected, self::NOW )
		);

		$tls = self::entry(
			'tls.example.com',
			array(
				'name'    => 'tls-md',
				'stage'   => 'ssl-failed',
				'ready'   => false,
				'reason'  => 'HostnameMismatch',
				'message' => 'the certificate covers other.example, not tls.example.com',
			)
		);
		$step = Closte_Operator_Screen::next_step( $tls, self::NOW );
		$this->assertStringStartsWith( 'Failed: HostnameMismatch: the certificate covers other.example', $step );
		$this->assertStringEndsWith( 'run closte-operator status tls-md.', $step );

		// failed on DNS: where DNS must point first, then the reason and the command
		$dns  = self::entry(
			'dns.example.com',
			array(
				'stage'      => 'failed',
				'ready'      => false,
				'reason'     => 'TargetMismatch',
				'message'    => 'dns.example.com resolves to 192.0.2.1, expected one of 127.0.0.1',
				'conditions' => self::dns( 'False', 'dns.example.com resolves to 192.0.2.1, expected one of 127.0.0.1' ),
			)
		);
		$step = Closte_Operator_Screen::next_step( $dns, self::NOW );
		$this->assertStringStartsWith( 'Point dns.example.com at 127.0.0.1 (', $step );
		$this->assertStringContainsString( 'Failed: TargetMismatch', $step );
		$this->assertStringContainsString( 'closte-operator status dns-example-com', $step );
	}

	public function test_other_states_have_their_own_step(): void {
		$ssl = self::entry(
			'a.example.com',
			array(
				'stage'   => 'checking-ssl-cert',
				'ready'   => false,
				'reason'  => 'ConnectFailed',
				'message' => 'no certificate yet',
			)
		);
		$this->assertStringStartsWith( 'DNS is right; waiting for Closte to issue a certificate for a.example.com.', Closte_Operator_Screen::next_step( $ssl, self::NOW ) );
		$this->assertStringContainsString( '(last check: ConnectFailed: no certificate yet)', Closte_Operator_Screen::next_step( $ssl, self::NOW ) );

		$pending = self::entry(
			'b.example.com',
			array(
				'stage'   => 'pending',
				'ready'   => false,
				'reason'  => '',
				'message' => '',
			)
		);
		$this->assertStringStartsWith( 'Waiting for the controller to register it on Closte', Closte_Operator_Screen::next_step( $pending, self::NOW ) );

		$credentials = array(
			'reason'  => 'CredentialsRejected',
			'message' => 'Closte refused the API key',
		) + $pending;
		$this->assertSame(
			'Not ready: CredentialsRejected: Closte refused the API key. For the details, run closte-operator status b-example-com.',
			Closte_Operator_Screen::next_step( $credentials, self::NOW )
		);

		$this->assertSame( '', Closte_Operator_Screen::next_step( self::entry( 'fine.example.com' ), self::NOW ) );
	}

	public function test_certificates_ending_within_14_days_are_flagged_with_a_step(): void {
		$days = fn( float $d ) => self::entry( 'c.example.com', array( 'certificate' => self::cert_in( (int) ( $d * 86400 ) ) ) );

		$this->assertTrue( Closte_Operator_Screen::expiring( $days( 13.99 ), self::NOW ) );
		$this->assertFalse( Closte_Operator_Screen::expiring( $days( 14.01 ), self::NOW ) );
		$this->assertFalse( Closte_Operator_Screen::expiring( $days( 60 ), self::NOW ) );
		$this->assertTrue( Closte_Operator_Screen::expiring( $days( -3 ), self::NOW ) );
		$this->assertFalse( Closte_Operator_Screen::expiring( self::entry( 'd.example.com', array( 'certificate' => null ) ), self::NOW ) );
		$this->assertNull( Closte_Operator_Screen::expiry( self::entry( 'd.example.com', array( 'certificate' => array( 'notAfter' => 'not a date' ) ) ), self::NOW ) );

		// other spellings of the time (an offset, fractions) are parsed, with the same verdict
		foreach ( array( array( 13.99, true ), array( 14.01, false ), array( -1, true ) ) as list( $d, $soon ) ) {
			$time = self::NOW + (int) ( $d * 86400 );
			foreach ( array( gmdate( 'Y-m-d\TH:i:sP', $time ), gmdate( 'Y-m-d\TH:i:s', $time ) . '.250Z', gmdate( 'Y-m-d\TH:i:s\Z', $time ) ) as $spelling ) {
				$this->assertSame( $soon, Closte_Operator_Screen::expiring( self::entry( 'e.example.com', array( 'certificate' => array( 'notAfter' => $spelling ) ) ), self::NOW ), $spelling );
			}
		}

		$expiry = Closte_Operator_Screen::expiry( $days( 5.5 ), self::NOW );
		$this->assertSame( 5, $expiry['days'] );
		$this->assertFalse( $expiry['expired'] );
		$this->assertTrue( $expiry['soon'] );

		$this->assertSame(
			'The certificate expires in 5 days and no renewed one has appeared yet; Closte renews it by itself, so check with closte-operator status c-example-com if it does not change soon.',
			Closte_Operator_Screen::next_step( $days( 5.5 ), self::NOW )
		);
		$this->assertStringStartsWith( 'The certificate expires in 1 day and', Closte_Operator_Screen::next_step( $days( 1.5 ), self::NOW ) );
		$this->assertSame( 'The certificate has expired and no renewed one has appeared. Run closte-operator status c-example-com.', Closte_Operator_Screen::next_step( $days( -1 ), self::NOW ) );
	}

	/**
	 * DNSReady Proxied and certificate.servedBy Proxy: the marker's text,
	 * the issuer marked as the proxy's, and steps that send the operator to
	 * the proxy, not to Closte.
	 */
	public function test_a_proxied_domain_says_the_certificate_is_the_proxys(): void {
		$proxied = self::entry(
			'cdn.example.com',
			array(
				'conditions'  => array(
					array(
						'type'    => 'DNSReady',
						'status'  => 'True',
						'reason'  => 'Proxied',
						'message' => 'cdn.example.com resolves to 104.16.0.1, expected one of 127.0.0.1, but the domain proves this network: a proxy or CDN in front; proven',
					),
				),
				'certificate' => array(
					'issuer'   => 'CN=Edge CA',
					'notAfter' => gmdate( 'Y-m-d\TH:i:s\Z', self::NOW + 60 * 86400 ),
					'servedBy' => 'Proxy',
				),
			)
		);
		$note = 'Served through a proxy or CDN: the certificate visitors see is the proxy\'s, so Closte\'s own certificate cannot be seen from outside.';
		$this->assertTrue( Closte_Operator_Screen::proxied( $proxied ) );
		$this->assertSame( $note, Closte_Operator_Screen::proxy_note( $proxied ) );
		$this->assertSame( 'the proxy\'s certificate, issued by CN=Edge CA', Closte_Operator_Screen::issuer( $proxied ) );
		// ready and far from expiry: the note is its only line
		$this->assertSame( $note, Closte_Operator_Screen::next_step( $proxied, self::NOW ) );

		// either sign alone is enough
		$served_by = self::entry( 'cdn.example.com', array( 'certificate' => $proxied['certificate'] ) );
		$this->assertTrue( Closte_Operator_Screen::proxied( $served_by ) );
		$by_reason = self::entry( 'cdn.example.com', array( 'conditions' => $proxied['conditions'] ) );
		$this->assertTrue( Closte_Operator_Screen::proxied( $by_reason ) );

		// not proxied: the site's own certificate, nothing to add
		$own = self::entry( 'own.example.com', array( 'certificate' => array( 'issuer' => 'CN=R11' ) + self::cert_in( 60 * 86400 ) ) );
		$this->assertFalse( Closte_Operator_Screen::proxied( $own ) );
		$this->assertSame( '', Closte_Operator_Screen::proxy_note( $own ) );
		$this->assertSame( 'CN=R11', Closte_Operator_Screen::issuer( $own ) );
		$this->assertSame( '', Closte_Operator_Screen::next_step( $own, self::NOW ) );
		// Proxied only while DNSReady holds, and a certificate the site serves itself
		$this->assertFalse( Closte_Operator_Screen::proxied( self::entry( 'x.example.com', array( 'conditions' => array( array( 'status' => 'False' ) + $proxied['conditions'][0] ) ) ) ) );
		$this->assertFalse( Closte_Operator_Screen::proxied( self::entry( 'x.example.com', array( 'certificate' => array( 'servedBy' => 'Site' ) ) ) ) );

		// the proxy's certificate ends: the proxy renews it, not Closte
		$soon = array( 'certificate' => array( 'servedBy' => 'Proxy' ) + self::cert_in( (int) ( 5.5 * 86400 ) ) ) + $proxied;
		$this->assertSame(
			'The proxy\'s certificate for cdn.example.com expires in 5 days: the proxy or CDN in front of it renews it, not Closte; check it there if it does not change soon.',
			Closte_Operator_Screen::next_step( $soon, self::NOW )
		);
		$expired = array( 'certificate' => array( 'servedBy' => 'Proxy' ) + self::cert_in( -86400 ) ) + $proxied;
		$this->assertSame(
			'The proxy\'s certificate for cdn.example.com has expired: the proxy or CDN in front of it must renew it, not Closte.',
			Closte_Operator_Screen::next_step( $expired, self::NOW )
		);

		// proven through the proxy, but the proxy's certificate is not valid yet
		$invalid = array(
			'stage'   => 'checking-ssl-cert',
			'ready'   => false,
			'reason'  => 'Untrusted',
			'message' => 'self-signed certificate',
		) + $proxied;
		$this->assertSame(
			'cdn.example.com reaches this network through a proxy or CDN, and the certificate visitors see is the proxy\'s, not Closte\'s: fix the certificate at the proxy or CDN (last check: Untrusted: self-signed certificate).',
			Closte_Operator_Screen::next_step( $invalid, self::NOW )
		);
	}

	/**
	 * DNSReady False with a Proof* reason: what to fix, then what the check
	 * saw; on a failed domain before the reason and the status command.
	 */
	public function test_a_failed_proof_says_what_to_fix(): void {
		$proof = fn( string $reason, string $message, string $stage = 'checking-dns' ) => self::entry(
			'p.example.com',
			array(
				'stage'      => $stage,
				'ready'      => false,
				'reason'     => $reason,
				'message'    => $message,
				'conditions' => array(
					array(
						'type'    => 'DNSReady',
						'status'  => 'False',
						'reason'  => $reason,
						'message' => $message,
					),
				),
			)
		);

		$this->assertSame(
			'p.example.com answers another WordPress network\'s proof: its DNS, or the origin of the proxy or CDN in front of it, points at another WordPress network. Point it at this network. Last check: the answer does not verify.',
			Closte_Operator_Screen::next_step( $proof( 'ProofMismatch', 'the answer does not verify.' ), self::NOW )
		);
		$this->assertSame(
			'The proxy or host in front of p.example.com does not pass /.well-known/closte-operator/ on to this network. Check the proxy\'s origin (it must be this network) and its page rules for that path. Last check: HTTP 404.',
			Closte_Operator_Screen::next_step( $proof( 'ProofNotFound', 'HTTP 404' ), self::NOW )
		);
		$this->assertSame(
			'The proxy or host in front of p.example.com does not pass /.well-known/closte-operator/ on to this network. Check the proxy\'s origin (it must be this network) and its page rules for that path. Last check: HTTP 200, no proof (a parked page?).',
			Closte_Operator_Screen::next_step( $proof( 'ProofUnexpected', 'HTTP 200, no proof (a parked page?)' ), self::NOW )
		);
		$this->assertSame(
			'p.example.com cannot be reached over HTTPS: check its DNS and that the proxy or host in front of it answers HTTPS for it. Last check: connection timed out.',
			Closte_Operator_Screen::next_step( $proof( 'ProofUnreachable', 'connection timed out' ), self::NOW )
		);

		// a proof failure never reads as a DNS record to change
		foreach ( array( 'ProofMismatch', 'ProofNotFound', 'ProofUnexpected', 'ProofUnreachable' ) as $reason ) {
			$this->assertStringNotContainsString( 'A/AAAA record', Closte_Operator_Screen::next_step( $proof( $reason, 'x resolves to 192.0.2.1, expected one of 127.0.0.1' ), self::NOW ), $reason );
		}

		// failed: the proof's step first, then the reason and the command
		$step = Closte_Operator_Screen::next_step( $proof( 'ProofNotFound', 'HTTP 404', 'failed' ), self::NOW );
		$this->assertStringStartsWith( 'The proxy or host in front of p.example.com does not pass /.well-known/closte-operator/ on', $step );
		$this->assertStringEndsWith( 'Failed: ProofNotFound: HTTP 404. For the details and what to fix, run closte-operator status p-example-com.', $step );
	}

	public function test_a_listing_that_failed_says_what_to_do(): void {
		$refused = Closte_Operator_Screen::listing_step( new Closte_Operator_Result( 401, '{"error":"wrong token"}' ), self::SIDECAR, '/var/run/closte-sidecar/token' );
		$this->assertStringContainsString( 'The sidecar refuses WordPress\'s token.', $refused );
		$this->assertStringContainsString( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE (/var/run/closte-sidecar/token) must be the sidecar\'s own', $refused );
		$this->assertStringContainsString( 'same Secret in the WordPress container and in the closte-sidecar container', $refused );
		$this->assertSame( $refused, Closte_Operator_Screen::listing_step( new Closte_Operator_Result( 403 ), self::SIDECAR, '/var/run/closte-sidecar/token' ) );

		$down = Closte_Operator_Screen::listing_step( Closte_Operator_Result::unreachable( 'cURL error 7' ), self::SIDECAR );
		$this->assertStringContainsString( 'Nothing answers at ' . self::SIDECAR . '.', $down );
		$this->assertStringContainsString( 'kubectl logs POD -c closte-sidecar', $down );

		$broken = Closte_Operator_Screen::listing_step( new Closte_Operator_Result( 503, '{"error":"Kubernetes API server unreachable"}' ), self::SIDECAR );
		$this->assertStringContainsString( 'answered HTTP 503: Kubernetes API server unreachable', $broken );
	}

	public function test_the_query_is_sanitized(): void {
		$this->assertSame(
			array(
				'filter' => 'all',
				'page'   => 1,
				'search' => '',
			),
			Closte_Operator_Screen::query( array() )
		);
		$this->assertSame(
			array(
				'filter' => 'not-ready',
				'page'   => 7,
				'search' => 'shop.example',
			),
			Closte_Operator_Screen::query(
				array(
					'filter' => 'not-ready',
					'paged'  => '7',
					's'      => ' Shop.Example/ ',
				)
			)
		);
		$this->assertSame( 'all', Closte_Operator_Screen::query( array( 'filter' => 'everything' ) )['filter'] );
		$this->assertSame( 1, Closte_Operator_Screen::query( array( 'paged' => '-3' ) )['page'] );
		$this->assertSame( 1, Closte_Operator_Screen::query( array( 'paged' => array( 2 ) ) )['page'] );
	}

	/**
	 * 10,000 entries: 200 pages of 50, the last one clamped, the filters'
	 * counts from one pass.
	 */
	public function test_pages_and_filters(): void {
		$domains = array();
		for ( $i = 0; $i < 10000; $i++ ) {
			$fields = array();
			if ( 0 === $i % 100 ) {
				$fields = array(
					'stage' => 'checking-dns',
					'ready' => false,
				);
			} elseif ( 1 === $i % 250 ) {
				$fields = array( 'certificate' => self::cert_in( 3 * 86400 ) );
			}
			$domains[] = self::entry( sprintf( 'd%05d.example.com', $i ), $fields );
		}
		$page = fn( array $q ) => Closte_Operator_Screen::page( $domains, Closte_Operator_Screen::query( $q ), self::NOW );

		$first = $page( array() );
		$this->assertSame(
			array(
				'all'       => 10000,
				'not-ready' => 100,
				'expiring'  => 40,
			),
			$first['counts']
		);
		$this->assertSame( array( 10000, 1, 200, 50, 0 ), array( $first['total'], $first['page'], $first['pages'], $first['per_page'], $first['first'] ) );
		$this->assertCount( 50, $first['rows'] );
		$this->assertSame( 'd00000.example.com', $first['rows'][0]['domain'] );
		$this->assertSame( 'd00049.example.com', $first['rows'][49]['domain'] );

		$third = $page( array( 'paged' => '3' ) );
		$this->assertSame( 'd00100.example.com', $third['rows'][0]['domain'] );
		$this->assertSame( 100, $third['first'] );

		$beyond = $page( array( 'paged' => '999' ) );
		$this->assertSame( 200, $beyond['page'] );
		$this->assertSame( 'd09999.example.com', end( $beyond['rows'] )['domain'] );

		$not_ready = $page( array( 'filter' => 'not-ready' ) );
		$this->assertSame( array( 100, 2 ), array( $not_ready['total'], $not_ready['pages'] ) );
		$this->assertSame( array( 'd00000.example.com', 'd00100.example.com' ), array_column( array_slice( $not_ready['rows'], 0, 2 ), 'domain' ) );
		$last = $page(
			array(
				'filter' => 'not-ready',
				'paged'  => '2',
			)
		);
		$this->assertCount( 50, $last['rows'] );
		$this->assertSame( 'd09900.example.com', end( $last['rows'] )['domain'] );

		$expiring = $page( array( 'filter' => 'expiring' ) );
		$this->assertSame( 40, $expiring['total'] );
		$this->assertSame( 'd00001.example.com', $expiring['rows'][0]['domain'] );

		$search = $page( array( 's' => 'd0999' ) );
		$this->assertSame( 10, $search['total'] );
		$this->assertSame( 10, $search['counts']['all'] );

		$none = Closte_Operator_Screen::page( array(), Closte_Operator_Screen::query( array( 'paged' => '4' ) ), self::NOW );
		$this->assertSame( array( 0, 1, 1, array() ), array( $none['total'], $none['page'], $none['pages'], $none['rows'] ) );

		$this->assertSame( array( 2, 9 ), Closte_Operator_Screen::site_ids( array( self::entry( 'a.example' ), self::entry( 'b.example', array( 'siteId' => 9 ) ), self::entry( 'c.example' ), self::entry( 'd.example', array( 'siteId' => null ) ) ) ) );
	}

	public function test_the_sync_notice_never_counts_zero(): void {
		$summary = fn( array $fields ) => $fields + array(
			'ok'        => true,
			'time'      => self::NOW,
			'error'     => '',
			'sites'     => 12,
			'written'   => 0,
			'queued'    => 0,
			'failed'    => 0,
			'retried'   => array(
				'done'    => 0,
				'queued'  => 0,
				'dropped' => 0,
			),
			'complete'  => true,
			'remaining' => 0,
			'intervals' => 0,
		);

		$this->assertSame(
			array(
				'type' => 'success',
				'text' => 'Sync checked 12 sites: nothing to change.',
			),
			Closte_Operator_Screen::sync_notice( $summary( array() ) )
		);
		$this->assertSame( 'Sync checked 1 site: nothing to change.', Closte_Operator_Screen::sync_notice( $summary( array( 'sites' => 1 ) ) )['text'] );
		$this->assertSame(
			'Sync checked 12 sites: 2 sites written, 1 waiting change delivered.',
			Closte_Operator_Screen::sync_notice(
				$summary(
					array(
						'written' => 2,
						'retried' => array(
							'done'    => 1,
							'queued'  => 0,
							'dropped' => 0,
						),
					)
				)
			)['text']
		);
		$this->assertSame(
			array(
				'type' => 'warning',
				'text' => 'Sync checked 12 sites: 1 site written, 3 sites queued for a retry, 1 site rejected by the sidecar, 5 domains given the new DNS check interval.',
			),
			Closte_Operator_Screen::sync_notice(
				$summary(
					array(
						'written'   => 1,
						'queued'    => 3,
						'failed'    => 1,
						'intervals' => 5,
					)
				)
			)
		);
		$this->assertSame(
			'Sync checked 500 sites: 4 sites written. 9,500 sites remain; a follow-up run continues in the background.',
			Closte_Operator_Screen::sync_notice(
				$summary(
					array(
						'sites'     => 500,
						'written'   => 4,
						'complete'  => false,
						'remaining' => 9500,
					)
				)
			)['text']
		);
		$this->assertSame(
			'Sync checked 500 sites: nothing to change. 1 site remains; a follow-up run continues in the background.',
			Closte_Operator_Screen::sync_notice(
				$summary(
					array(
						'sites'     => 500,
						'complete'  => false,
						'remaining' => 1,
					)
				)
			)['text']
		);
		// an older summary without the new fields
		$this->assertSame( 'Sync checked 3 sites: nothing to change.', Closte_Operator_Screen::sync_notice( array( 'ok' => true, 'sites' => 3, 'written' => 0 ) )['text'] );

		$failed = Closte_Operator_Screen::sync_notice(
			$summary(
				array(
					'ok'    => false,
					'error' => 'sidecar unreachable: cURL error 7',
				)
			)
		);
		$this->assertSame( 'error', $failed['type'] );
		$this->assertSame( 'Sync failed: sidecar unreachable: cURL error 7. Nothing was written; the next run tries again.', $failed['text'] );

		// every combination of zero and non-zero counts: never a zero
		$fields = array( 'written', 'queued', 'failed', 'done', 'still', 'dropped', 'intervals' );
		for ( $mask = 0; $mask < 2 ** count( $fields ); $mask++ ) {
			$n = array();
			foreach ( $fields as $bit => $field ) {
				$n[ $field ] = ( $mask >> $bit ) & 1 ? $bit + 1 : 0;
			}
			$text = Closte_Operator_Screen::sync_notice(
				$summary(
					array(
						'written'   => $n['written'],
						'queued'    => $n['queued'],
						'failed'    => $n['failed'],
						'retried'   => array(
							'done'    => $n['done'],
							'queued'  => $n['still'],
							'dropped' => $n['dropped'],
						),
						'intervals' => $n['intervals'],
					)
				)
			)['text'];
			$this->assertDoesNotMatchRegularExpression( '/(^|\D)0 /', $text, $text );
			$this->assertSame( 0 === $mask, str_contains( $text, 'nothing to change' ), $text );
		}
	}

	public function test_the_interval_field_accepts_10_to_300_seconds(): void {
		$this->assertSame(
			array(
				'ok'      => true,
				'seconds' => null,
				'error'   => '',
			),
			Closte_Operator_Screen::interval_input( '  ' )
		);
		foreach ( array( '10' => 10, '300' => 300, ' 60 ' => 60, '045' => 45 ) as $raw => $seconds ) {
			$input = Closte_Operator_Screen::interval_input( (string) $raw );
			$this->assertTrue( $input['ok'], (string) $raw );
			$this->assertSame( $seconds, $input['seconds'], (string) $raw );
		}
		foreach ( array( '9', '301', '0', '-30', '30.5', '1e2', 'abc', '99999999' ) as $raw ) {
			$input = Closte_Operator_Screen::interval_input( $raw );
			$this->assertFalse( $input['ok'], $raw );
			$this->assertNull( $input['seconds'], $raw );
			$this->assertStringStartsWith( 'Not saved: the DNS check interval must be a whole number of seconds from 10 to 300', $input['error'], $raw );
		}

		$this->assertStringStartsWith( 'Set by Ultimate Multisite\'s "DNS Check Interval" setting (45 s)', Closte_Operator_Screen::interval_source( array( 'seconds' => 45, 'source' => 'ultimate-multisite' ) ) );
		$this->assertStringContainsString( 'every 60 seconds', Closte_Operator_Screen::interval_source( array( 'seconds' => 60, 'source' => 'setting' ) ) );
		$this->assertStringStartsWith( 'Not set: the sidecar\'s default', Closte_Operator_Screen::interval_source( array( 'seconds' => null, 'source' => 'sidecar-default' ) ) );
	}

	public function test_queue_changes_and_retries_in_words(): void {
		$this->assertSame( 'add a.example.com (site #3)', Closte_Operator_Screen::describe( Closte_Operator_Queue::put( 'a.example.com', 3 ) ) );
		$this->assertSame( 'add a.example.com', Closte_Operator_Screen::describe( Closte_Operator_Queue::put( 'a.example.com', null ) ) );
		$this->assertSame( 'remove a.example.com', Closte_Operator_Screen::describe( Closte_Operator_Queue::delete( 'a.example.com' ) ) );
		$this->assertSame( 'site #4: (no domains)', Closte_Operator_Screen::describe( Closte_Operator_Queue::site( 4, array() ) ) );
		$this->assertSame( 'site #4: a.example, b.example', Closte_Operator_Screen::describe( Closte_Operator_Queue::site( 4, array( 'b.example', 'a.example' ) ) ) );

		$this->assertSame( 'success', Closte_Operator_Screen::retry_notice( 'add x', new Closte_Operator_Result( 200, '{}' ) )['type'] );
		$still = Closte_Operator_Screen::retry_notice( 'add x', new Closte_Operator_Result( 409, '{"error":"held by site 3"}' ) );
		$this->assertSame( array( 'warning', 'Still waiting: add x (HTTP 409: held by site 3). It stays in the queue and is retried automatically.' ), array( $still['type'], $still['text'] ) );
		$this->assertSame( 'error', Closte_Operator_Screen::retry_notice( 'add x', new Closte_Operator_Result( 400, '{"error":"invalid domain"}' ) )['type'] );
		$this->assertSame( 'Not retried: add x is no longer waiting.', Closte_Operator_Screen::retry_notice( 'add x', null )['text'] );
	}
}
